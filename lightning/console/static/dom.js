// DOM helpers for the console. Data is only ever put into the page as text (textContent, attribute
// values): nothing here parses HTML, so a request like "<img src=x onerror=…>" shows as typed.

const SVG_NS = 'http://www.w3.org/2000/svg';

function fill(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'text') node.textContent = String(value);
    else if (name === 'dataset') Object.assign(node.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An HTML element: el('td', {class: 'x', text: value}, ...children). */
export function el(tag, attrs, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element, same contract as el. */
export function svg(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function $(id) {
  return document.getElementById(id);
}

/** JSON pretty-printed for a <pre>. */
export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

export function fixed(value, digits = 3) {
  return value === null || value === undefined ? '–' : Number(value).toFixed(digits);
}

export function percent(value) {
  return value === null || value === undefined ? '–' : `${(100 * value).toFixed(1)}%`;
}

/** A rate {value, n, low, high} as the CLI prints it: 0.933 [0.787, 0.982] (n=30). */
export function rateText(rate) {
  if (!rate || rate.value === null || rate.value === undefined) return '–';
  return `${fixed(rate.value)} [${fixed(rate.low)}, ${fixed(rate.high)}] (n=${rate.n})`;
}

/** A rate in percent: 84.8% [76.5%, 90.6%] (n=99). */
export function percentRate(rate) {
  if (!rate || rate.value === null || rate.value === undefined) return '–';
  return `${percent(rate.value)} [${percent(rate.low)}, ${percent(rate.high)}] (n=${rate.n})`;
}

export function when(iso) {
  if (!iso) return '–';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toISOString().replace('T', ' ').slice(0, 19);
}

/** A table from column names and rows of cells (strings, numbers or nodes). */
export function table(columns, rows, attrs = {}) {
  return el('table', attrs,
    el('thead', {}, el('tr', {}, columns.map((c) => el('th', {scope: 'col', text: c})))),
    el('tbody', {}, rows.map((cells) => el('tr', {}, cells.map((cell) => el('td', {}, cell ?? '–'))))));
}
