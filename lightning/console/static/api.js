// The console's client of the shared HTTP API (/api/… on both hosts), and its credentials.
//
// A token arrives once in the address (#token=name:secret for serve-console, #key=<function key> for
// the Function App), is kept in sessionStorage for this tab only, and is removed from the address
// bar at once, so it never lands in history, bookmarks or a screenshot.

const TOKEN = 'lightning-console-token';
const KEY = 'lightning-console-function-key';

// The page is served at / (serve-console) or at /api/console/ (the Function App): the API is beside it.
const match = location.pathname.match(/^(.*\/)console\/[^/]*$/);
export const API_BASE = match ? match[1] : '/api/';

export function takeCredentials() {
  const hash = location.hash;
  for (const [prefix, name] of [['#token=', TOKEN], ['#key=', KEY]]) {
    if (hash.startsWith(prefix)) {
      const value = decodeURIComponent(hash.slice(prefix.length));
      if (value) sessionStorage.setItem(name, value);
      history.replaceState(null, '', location.pathname + location.search);
    }
  }
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN, value);
  else sessionStorage.removeItem(TOKEN);
}

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.type = error.type || 'Error';
    this.body = body;
  }
}

/** Call the API: resolves {status, body, headers} for 2xx, rejects with ApiError otherwise. */
export async function call(method, path, {query, json, text, headers} = {}) {
  const url = new URL(API_BASE + path, location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== null && value !== undefined && value !== '') url.searchParams.set(name, String(value));
  }
  const sent = {Accept: 'application/json', ...(headers || {})};
  const token = sessionStorage.getItem(TOKEN);
  if (token) sent.Authorization = `Bearer ${token}`;
  const key = sessionStorage.getItem(KEY);
  if (key) sent['x-functions-key'] = key;
  let body;
  if (json !== undefined) {
    sent['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (text !== undefined) {
    sent['Content-Type'] = 'text/plain; charset=utf-8';
    body = text;
  }
  const response = await fetch(url, {method, headers: sent, body, credentials: 'same-origin', cache: 'no-store'});
  let parsed = null;
  const raw = await response.text();
  if (raw) {
    try { parsed = JSON.parse(raw); } catch { parsed = {error: {type: 'Error', message: raw.slice(0, 200)}}; }
  }
  if (!response.ok) throw new ApiError(response.status, parsed);
  return {status: response.status, body: parsed, headers: response.headers};
}
