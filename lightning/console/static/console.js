// The review console: review queue, episode view and label form, judge vs people, golden set, loop status.
//
// Every figure comes from the shared HTTP API (/api/…), the same services the CLI uses. Episode text is
// what strangers typed: it only ever enters the page as text (see dom.js).

import {ApiError, call, setToken, takeCredentials} from './api.js';
import {intervalBars, intervalStrip} from './charts.js';
import {$, clear, el, fixed, percent, percentRate, pretty, rateText, table, when} from './dom.js';
import {argumentProblems, skeleton} from './schema.js';

const REWARD_BANDS = {1: 0.0, 2: 0.25, 3: 0.5, 4: 0.75, 5: 1.0};
const LONG_RESULT = 400;
const VIEWS = ['review', 'judge', 'golden', 'status'];
const AGENT_KEY = 'lightning-console-agent';

const state = {
  agents: [],
  minReward: 0.7,
  agent: null,
  tool: '',
  limit: 50,
  queue: [],
  selected: -1,
  item: null,
  episode: null,
  etag: null,
  rewardSet: false,
  loading: 0,
  view: 'review',
};

// --- status lines and the banner -------------------------------------------------------------------
function banner(message, {tokenForm = false} = {}) {
  const node = $('banner');
  clear(node);
  if (!message) {
    node.hidden = true;
    return;
  }
  node.append(el('p', {text: message}));
  if (tokenForm) {
    const input = el('input', {type: 'password', id: 'token-input', autocomplete: 'off', placeholder: 'name:secret', 'aria-label': 'Console token'});
    const form = el('form', {class: 'token-form'}, input, el('button', {type: 'submit', text: 'Use token'}));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      setToken(input.value.trim());
      banner('');
      start();
    });
    node.append(form);
  }
  node.hidden = false;
}

function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    banner('This console needs its token (401): open the link with #token=… once, or paste the token here.', {tokenForm: true});
  } else if (error instanceof ApiError) {
    banner(`${error.type}: ${error.message}`);
  } else {
    banner(`Cannot reach the console's API: ${error.message}`);
  }
}

function saveStatus(message, kind = 'info') {
  const node = $('save-status');
  node.textContent = message;
  node.className = `status ${kind}`;
}

// --- agents ---------------------------------------------------------------------------------------
function toolSpec(name) {
  return state.agent ? state.agent.tools.find((tool) => tool.name === name) : undefined;
}

function fillAgentControls() {
  const select = $('agent-select');
  clear(select);
  for (const agent of state.agents) select.append(el('option', {value: agent.id, text: agent.id}));
  select.value = state.agent ? state.agent.id : '';
  const filter = $('tool-filter');
  clear(filter).append(el('option', {value: '', text: 'all tools'}));
  const expected = $('expected-tool');
  clear(expected).append(el('option', {value: '', text: '(not stated)'}));
  for (const tool of state.agent ? state.agent.tools : []) {
    filter.append(el('option', {value: tool.name, text: tool.name}));
    expected.append(el('option', {value: tool.name, text: tool.name}));
  }
  filter.value = state.tool;
  $('accept-line').textContent = `accept line ${state.minReward}`;
}

async function firstWithEpisodes() {
  for (const agent of state.agents) {
    const {body} = await call('GET', 'episodes', {query: {agent_id: agent.id, limit: 1}});
    if (body.count) return agent;
  }
  return null;
}

async function loadAgents() {
  const {body} = await call('GET', 'agents');
  state.agents = body.agents;
  state.minReward = body.min_reward;
  const wanted = new URLSearchParams(location.search).get('agent_id') || localStorage.getItem(AGENT_KEY);
  state.agent = state.agents.find((a) => a.id === wanted) || (await firstWithEpisodes()) || state.agents[0] || null;
  fillAgentControls();
  const me = await call('GET', 'whoami');
  $('whoami').textContent = `labels recorded as ${me.body.caller}`;
}

// --- review queue -----------------------------------------------------------------------------------
function queueRow(item, index) {
  const score = item.judge_score === null ? 'not scored' : `judge ${fixed(item.judge_score, 2)}`;
  const more = item.why.length > 1 ? ` (+${item.why.length - 1} more)` : '';
  const row = el('li', {class: 'queue-row', 'data-testid': 'queue-row', 'data-episode-id': item.id, tabindex: '-1'},
    el('div', {class: 'row-head'},
      el('span', {class: 'rank', text: `${index + 1}`}),
      el('span', {class: 'tool', text: item.tool || 'no tool'}),
      el('span', {class: 'score', text: score})),
    el('div', {class: 'query', text: item.query}),
    el('div', {class: 'why', text: `${item.why[0] || ''}${more}`}));
  row.addEventListener('click', () => select(index));
  return row;
}

function renderQueue() {
  const list = clear($('queue'));
  state.queue.forEach((item, index) => list.append(queueRow(item, index)));
  $('queue-count').textContent = `${state.queue.length} to review, most informative first`;
  $('queue-empty').hidden = state.queue.length > 0;
  markSelected();
}

function markSelected() {
  const rows = $('queue').children;
  for (let i = 0; i < rows.length; i += 1) {
    const on = i === state.selected;
    rows[i].classList.toggle('selected', on);
    rows[i].setAttribute('aria-selected', on ? 'true' : 'false');
    if (on) rows[i].scrollIntoView({block: 'nearest'});
  }
}

async function loadQueue({keep = false} = {}) {
  if (!state.agent) return;
  const current = keep && state.item ? state.item.id : null;
  const {body} = await call('GET', 'review-queue', {query: {agent_id: state.agent.id, limit: state.limit, tool: state.tool}});
  state.queue = body.items;
  renderQueue();
  const index = current ? state.queue.findIndex((item) => item.id === current) : -1;
  if (index >= 0) {
    state.selected = index;
    markSelected();
  } else if (state.queue.length) {
    await select(0);
  } else {
    state.selected = -1;
    showEpisode(null);
  }
}

async function select(index) {
  if (index < 0 || index >= state.queue.length) return;
  state.selected = index;
  markSelected();
  await openEpisode(state.queue[index]);
}

// --- episode view -------------------------------------------------------------------------------------
function section(title, ...content) {
  return el('section', {class: 'block'}, el('h3', {text: title}), ...content);
}

function callText(tool, args) {
  return `${tool || 'no tool'} ${args ? JSON.stringify(args) : ''}`.trim();
}

function autoLabel(episode) {
  return [...(episode.labels || [])].reverse().find((label) => label.source === 'auto') || null;
}

function labelHistory(episode) {
  const rows = (episode.labels || []).map((label) => [
    when(label.labeled_at),
    label.source,
    label.labeled_by,
    fixed(label.score, 2),
    label.expected_tool ? callText(label.expected_tool, label.expected_arguments) : '–',
    label.reason || '–',
  ]);
  if (!rows.length) return el('p', {class: 'muted', text: 'No labels yet.'});
  return table(['When (UTC)', 'Source', 'By', 'Reward', 'Expected call', 'Reason'], rows, {'data-testid': 'label-history'});
}

function resultBlock(result) {
  const text = typeof result === 'string' ? result : pretty(result ?? null);
  const pre = el('pre', {class: 'json', 'data-testid': 'tool-result', text});
  if (text.length <= LONG_RESULT && text.split('\n').length <= 15) return pre;
  return el('details', {class: 'long'}, el('summary', {text: `Show the tool result (${text.length.toLocaleString()} characters)`}), pre);
}

function judgeBlock(episode) {
  const label = autoLabel(episode);
  if (!label) return el('p', {class: 'muted', text: 'Not scored by the judge yet.'});
  const flags = (label.flags || []).map((flag) => flag.replaceAll('_', ' ')).join(', ');
  return el('dl', {class: 'facts', 'data-testid': 'judge-label'},
    el('dt', {text: 'Score (judge)'}), el('dd', {text: fixed(label.score, 2)}),
    el('dt', {text: 'Reason'}), el('dd', {text: label.reason || '–'}),
    el('dt', {text: 'Expected tool'}), el('dd', {text: label.expected_tool || 'none named'}),
    el('dt', {text: 'Evaluator'}), el('dd', {text: `${label.evaluator || '?'} ${label.evaluator_version || ''}`.trim()}),
    flags ? el('dt', {text: 'Flags'}) : null, flags ? el('dd', {text: flags}) : null);
}

function showEpisode(episode, item = state.item) {
  const view = $('episode');
  const form = $('label-form');
  if (!episode) {
    view.hidden = true;
    form.hidden = true;
    $('episode-empty').hidden = false;
    return;
  }
  $('episode-empty').hidden = true;
  clear(view).append(
    el('header', {class: 'episode-head'},
      el('h2', {text: 'Episode'}),
      el('code', {'data-testid': 'episode-id', text: episode.id}),
      el('span', {class: 'muted', text: ` ${episode.agent_id} · ${when(episode.timestamp)} UTC`})),
    item && item.why && item.why.length ? section('Why it is queued', el('ul', {class: 'why-list'}, item.why.map((why) => el('li', {text: why})))) : null,
    section('Request', el('p', {class: 'request', 'data-testid': 'episode-request', text: episode.state.query}),
      Object.keys(episode.state.context || {}).length ? el('pre', {class: 'json', text: pretty(episode.state.context)}) : null),
    section('Tool call', el('p', {}, el('code', {class: 'tool-name', 'data-testid': 'episode-tool', text: episode.action.tool || 'no tool'})),
      el('pre', {class: 'json', 'data-testid': 'episode-arguments', text: pretty(episode.action.arguments || {})})),
    section('Tool result', episode.error ? el('p', {class: 'error', text: `Error: ${episode.error}`}) : null, resultBlock(episode.result)),
    section('Answer', el('p', {class: 'answer', text: episode.response || '–'}),
      el('p', {class: 'muted', text: `model ${episode.model_version || 'unknown'} · latency ${episode.latency_ms === null || episode.latency_ms === undefined ? '–' : `${Math.round(episode.latency_ms)} ms`}`})),
    section("The judge's label", judgeBlock(episode)),
    section('Label history', labelHistory(episode)));
  view.hidden = false;
  form.hidden = false;
}

function resetForm(episode) {
  // A new episode: keys go back to the page (after a save from the tool select, 5 or s must not type there).
  if (document.activeElement instanceof HTMLElement && $('label-form').contains(document.activeElement)) {
    document.activeElement.blur();
  }
  const label = autoLabel(episode);
  state.rewardSet = false;
  $('reward').value = String(label ? label.score : 0.5);
  $('reward-value').textContent = 'not set';
  $('reason').value = '';
  $('expected-tool').value = '';
  setArguments(null);
  $('conflict').hidden = true;
  saveStatus('');
}

async function openEpisode(item) {
  state.item = item;
  state.loading += 1;
  const ticket = state.loading;
  try {
    const {body, headers} = await call('GET', `episodes/${encodeURIComponent(item.id)}`);
    if (ticket !== state.loading) return; // a later selection won
    state.episode = body;
    state.etag = (headers.get('ETag') || '').replaceAll('"', '') || null;
    showEpisode(body, item);
    resetForm(body);
  } catch (error) {
    failed(error);
  }
}

// --- label form ---------------------------------------------------------------------------------------
function setReward(value) {
  state.rewardSet = true;
  $('reward').value = String(value);
  $('reward-value').textContent = Number(value).toFixed(2);
}

function setArguments(value) {
  const editor = $('expected-arguments');
  editor.disabled = value === null;
  editor.value = value === null ? '' : pretty(value);
  validateArguments();
}

function validateArguments() {
  const tool = $('expected-tool').value;
  const list = clear($('argument-problems'));
  const editor = $('expected-arguments');
  if (!tool) {
    editor.removeAttribute('aria-invalid');
    editor.classList.remove('invalid');
    return {ok: true, value: null};
  }
  const {value, problems} = argumentProblems(editor.value, toolSpec(tool));
  for (const problem of problems) list.append(el('li', {text: problem}));
  editor.classList.toggle('invalid', problems.length > 0);
  editor.setAttribute('aria-invalid', problems.length ? 'true' : 'false');
  return {ok: problems.length === 0, value};
}

function toolChanged() {
  const tool = $('expected-tool').value;
  if (!tool) {
    setArguments(null);
    return;
  }
  const episode = state.episode;
  const same = episode && episode.action.tool === tool;
  setArguments(same ? {...episode.action.arguments} : skeleton(toolSpec(tool)));
}

function labelBody() {
  if (!state.rewardSet) {
    saveStatus('Set a reward first: keys 1–5 or the slider.', 'error');
    return null;
  }
  const tool = $('expected-tool').value;
  const checked = validateArguments();
  if (!checked.ok) {
    saveStatus("Fix the expected arguments first: they must fit the tool's schema.", 'error');
    return null;
  }
  return {
    reward: Number($('reward').value),
    reason: $('reason').value,
    expected_tool: tool || null,
    expected_arguments: tool ? checked.value : null,
  };
}

async function save() {
  if (!state.episode || $('label-form').hidden) return;
  const body = labelBody();
  if (!body) return;
  const episode = state.episode;
  saveStatus('Saving…');
  try {
    const headers = state.etag ? {'If-Match': `"${state.etag}"`} : {};
    const {body: saved} = await call('POST', `episodes/${encodeURIComponent(episode.id)}/label`, {json: body, headers});
    const golden = saved.golden_id ? '; it joined the golden set' : '';
    const last = $('last-saved');
    last.textContent = `Saved ${episode.id} as a ${saved.kind} by ${saved.label.labeled_by}${golden}.`;
    last.dataset.episodeId = episode.id;
    last.dataset.kind = saved.kind;
    saveStatus('');
    dropFromQueue(episode.id);
  } catch (error) {
    if (error instanceof ApiError && error.status === 409) {
      await conflict(error.body.error.current);
    } else if (error instanceof ApiError && error.status === 400) {
      saveStatus(`Not saved: ${error.message}`, 'error');
    } else {
      saveStatus('Not saved.', 'error');
      failed(error);
    }
  }
}

function dropFromQueue(id) {
  const index = state.queue.findIndex((item) => item.id === id);
  if (index < 0) return;
  state.queue.splice(index, 1);
  renderQueue();
  if (state.queue.length) select(Math.min(index, state.queue.length - 1));
  else {
    state.selected = -1;
    showEpisode(null);
    loadQueue();
  }
}

async function conflict(current) {
  // Someone labeled this episode after it was opened: show their label, keep ours in the form, and
  // save ours only if the reviewer says so (with the new etag) — never silently over theirs.
  const label = current && current.label;
  const box = clear($('conflict'));
  box.append(
    el('h3', {text: 'Not saved: this episode changed since you opened it'}),
    el('p', {text: 'The newer label:'}),
    label ? el('dl', {class: 'facts', 'data-testid': 'conflict-label'},
      el('dt', {text: 'By'}), el('dd', {'data-testid': 'conflict-by', text: label.labeled_by}),
      el('dt', {text: 'Source'}), el('dd', {text: label.source}),
      el('dt', {text: 'Reward'}), el('dd', {'data-testid': 'conflict-reward', text: fixed(label.score, 2)}),
      el('dt', {text: 'Expected call'}), el('dd', {text: label.expected_tool ? callText(label.expected_tool, label.expected_arguments) : '–'}),
      el('dt', {text: 'Reason'}), el('dd', {text: label.reason || '–'}),
      el('dt', {text: 'When'}), el('dd', {text: `${when(label.labeled_at)} UTC`})) : el('p', {text: 'unknown'}),
    el('div', {class: 'actions'},
      el('button', {type: 'button', id: 'keep-theirs', text: 'Keep theirs, next episode', onclick: () => dropFromQueue(state.episode.id)}),
      el('button', {type: 'button', id: 'save-mine', text: 'Save mine over it', onclick: () => save()})));
  box.hidden = false;
  saveStatus('Not saved: someone else labeled this episode (see below).', 'error');
  try { // the current version (and its etag), keeping the form as the reviewer left it
    const {body, headers} = await call('GET', `episodes/${encodeURIComponent(current.id)}`);
    state.episode = body;
    state.etag = (headers.get('ETag') || '').replaceAll('"', '') || null;
    showEpisode(body);
  } catch (error) {
    failed(error);
  }
}

async function addGolden() {
  if (!state.episode) return;
  const tool = $('expected-tool').value;
  let json = {};
  if (tool) {
    const checked = validateArguments();
    if (!checked.ok) {
      saveStatus("Fix the expected arguments first: they must fit the tool's schema.", 'error');
      return;
    }
    json = {expected_tool: tool, expected_arguments: checked.value};
  }
  try {
    const {body} = await call('POST', `episodes/${encodeURIComponent(state.episode.id)}/golden`, {json});
    saveStatus(`Added ${callText(body.expected_tool, body.expected_arguments)} to the golden set (${body.source}); it holds ${body.total} examples.`, 'ok');
  } catch (error) {
    if (error instanceof ApiError && error.status === 400) saveStatus(`Not added: ${error.message}`, 'error');
    else failed(error);
  }
}

// --- judge vs people ------------------------------------------------------------------------------------
function figureRow(name, figure, {rate = true, min = 0} = {}) {
  const value = figure ? figure.value : null;
  const text = rate ? rateText(figure) : (value === null || value === undefined ? '–' : `${fixed(value)} [${fixed(figure.low)}, ${fixed(figure.high)}]`);
  return el('tr', {'data-figure': name, 'data-value': value ?? '', 'data-low': figure && figure.low !== null ? figure.low : '', 'data-high': figure && figure.high !== null ? figure.high : '', 'data-n': rate && figure ? figure.n : ''},
    el('th', {scope: 'row', text: name.replaceAll('_', ' ')}),
    el('td', {class: 'figure', text}),
    el('td', {}, intervalStrip(value, figure ? figure.low : null, figure ? figure.high : null, {min})));
}

function renderJudge(report) {
  const root = clear($('judge-report'));
  const trust = report.trust;
  root.append(
    el('p', {class: 'lede', text: 'The judge is an estimate; people and golden answers are the truth. Each figure compares the judge’s accept decision (reward ≥ ' + report.min_reward + ') with the truth, with its 95% interval.'}),
    el('div', {class: `trust ${trust.trusted ? 'trusted' : 'untrusted'}`, 'data-testid': 'judge-trust'},
      el('strong', {text: trust.trusted ? 'The loop trusts the judge' : 'The loop does NOT trust the judge'}),
      el('p', {text: trust.reason}),
      el('p', {class: 'muted', text: `Trust floor: precision ≥ ${trust.min_precision} once ${trust.min_compared} episodes are compared.`})),
    el('table', {class: 'figures'},
      el('tbody', {},
        el('tr', {'data-figure': 'compared', 'data-value': report.compared},
          el('th', {scope: 'row', text: 'compared'}),
          el('td', {class: 'figure', text: `${report.compared} (${report.from_human} human labels, ${report.from_golden} golden answers)`}),
          el('td', {text: (report.evaluators || []).join(', ') || '–'})),
        figureRow('agreement', report.agreement),
        figureRow('precision', report.precision),
        figureRow('recall', report.recall),
        figureRow('cohen_kappa', report.cohen_kappa, {rate: false, min: -1}),
        figureRow('rank_correlation', report.rank_correlation, {rate: false, min: -1}))));
  const confusion = report.tool_confusion || {};
  const truths = [...new Set(Object.values(confusion).flatMap((row) => Object.keys(row)))].sort();
  if (truths.length) {
    const rows = Object.entries(confusion).map(([judge, row]) =>
      [judge, ...truths.map((truth) => el('span', {class: judge === truth ? 'diagonal' : (row[truth] ? 'off' : ''), text: String(row[truth] || 0)}))]);
    root.append(el('h3', {text: 'Tool confusion: the judge’s expected tool (rows) against the right tool (columns)'}),
      table(['judge expected ↓ / right →', ...truths], rows, {class: 'confusion', 'data-testid': 'tool-confusion'}));
  } else {
    root.append(el('p', {class: 'muted', text: 'No tool confusion yet: review episodes or import a golden set.'}));
  }
}

async function loadJudge() {
  const {body} = await call('GET', 'judge-report', {query: {agent_id: state.agent.id}});
  renderJudge(body);
}

// --- golden set -----------------------------------------------------------------------------------------
async function loadGolden() {
  const {body} = await call('GET', 'golden', {query: {agent_id: state.agent.id}});
  const rows = body.examples.map((e) => [e.query, e.expected_tool, JSON.stringify(e.expected_arguments), e.source, e.created_by, when(e.created_at)]);
  const holder = clear($('golden-list'));
  holder.append(el('p', {'data-testid': 'golden-count', text: `${body.count} golden examples for ${body.agent_id}`}));
  if (rows.length) holder.append(table(['Request', 'Expected tool', 'Expected arguments', 'Source', 'By', 'When (UTC)'], rows, {'data-testid': 'golden-table'}));
}

async function importGolden(file) {
  const report = clear($('golden-import-report'));
  try {
    const text = await file.text();
    const {body} = await call('POST', 'golden', {query: {agent_id: state.agent.id}, text});
    report.append(el('p', {class: 'status ok', text: `${file.name}: ${body.lines} lines, ${body.stored} stored, ${body.bad.length} bad; the golden set holds ${body.total}.`}));
    if (body.bad.length) report.append(el('ul', {class: 'problems'}, body.bad.map((bad) => el('li', {text: `line ${bad.line}: ${bad.error}`}))));
    await loadGolden();
  } catch (error) {
    if (error instanceof ApiError && error.status === 400) report.append(el('p', {class: 'status error', text: `${file.name}: ${error.message}`}));
    else failed(error);
  }
}

// --- loop status ----------------------------------------------------------------------------------------
function truthBars(figures) {
  const gt = figures.ground_truth;
  return [gt.tool_accuracy, gt.argument_exact_match];
}

function beforeAfter(pair) {
  if (!pair) return el('p', {class: 'muted', text: 'No before/after yet: it appears once a model is promoted over another.'});
  const judge = (f) => `${percent(f.judge.tool_accuracy.value)} tool accuracy, reward ${fixed(f.judge.avg_reward)}`;
  const judged = `Judge-estimated (not ground truth): ${pair.previous} ${judge(pair.previous_figures)}; ${pair.active} ${judge(pair.active_figures)}.`;
  if (!pair.active_figures.ground_truth.n) {
    return el('div', {class: 'before-after', 'data-testid': 'before-after'},
      el('p', {text: `No ground truth for ${pair.active} against ${pair.previous}: its gate had no golden set (import one, or review episodes).`}),
      el('p', {class: 'muted', text: judged}));
  }
  const before = truthBars(pair.previous_figures);
  const after = truthBars(pair.active_figures);
  const n = pair.active_figures.ground_truth.n;
  const bar = (name, rate, cls) => ({name, value: rate.value, low: rate.low, high: rate.high, cls});
  const chart = intervalBars({
    title: `Ground truth on the golden set: ${pair.previous} (before) vs ${pair.active} (active)`,
    legend: [{name: `before: ${pair.previous}`, cls: 'before'}, {name: `active: ${pair.active}`, cls: 'after'}],
    groups: [
      {label: 'tool accuracy (ground truth)', bars: [bar('before', before[0], 'before'), bar('active', after[0], 'after')]},
      {label: 'argument exact match (ground truth)', bars: [bar('before', before[1], 'before'), bar('active', after[1], 'after')]},
    ],
  });
  return el('figure', {class: 'before-after', 'data-testid': 'before-after'},
    chart,
    el('figcaption', {text: `Ground truth: golden set ${pair.golden_set || '(known answers)'}, n=${n}; whiskers are 95% intervals. ${judged}`}));
}

function gateTruth(gate) {
  const truth = (side) => (side && side.ground_truth && side.ground_truth.n ? side.ground_truth.tool_accuracy : null);
  const before = truth(gate && gate.baseline);
  const after = truth(gate && gate.candidate);
  if (!before || !after) return 'no golden set';
  return `${percentRate(before)} → ${percentRate(after)}`;
}

function renderStatus(status) {
  const root = clear($('status'));
  const trust = status.judge.trust;
  root.append(
    el('dl', {class: 'facts summary'},
      el('dt', {text: 'Episodes'}), el('dd', {text: status.episodes.toLocaleString()}),
      el('dt', {text: 'Labeled by people'}), el('dd', {text: status.human_labeled.toLocaleString()}),
      el('dt', {text: 'Golden examples'}), el('dd', {text: status.golden_examples.toLocaleString()}),
      el('dt', {text: 'Active version'}), el('dd', {'data-testid': 'active-version', text: status.active_version || 'none (base model)'}),
      el('dt', {text: 'Judge'}), el('dd', {text: `${trust.trusted ? 'trusted' : 'NOT trusted'}: ${trust.reason}`})),
    el('h3', {text: 'Before / after: the active model against the previous one'}),
    beforeAfter(status.before_after),
    el('h3', {text: 'Models'}),
    status.models.length ? table(['Version', 'Model', 'Status', 'Active', 'Gate', 'Basis', 'Tool accuracy, ground truth (baseline → candidate)', 'Reason'], status.models.map((m) => [
      `v${m.version}`, m.model_name, m.status, m.active ? 'active' : '',
      m.gate ? (m.gate.promote ? (m.gate.forced ? 'forced' : 'passed') : 'refused') : '–',
      m.gate ? (m.gate.ground_truth ? 'ground truth first' : 'judge only') : '–',
      gateTruth(m.gate),
      m.gate ? m.gate.reason : '–']), {'data-testid': 'models-table'}) : el('p', {class: 'muted', text: 'No model versions yet.'}),
    el('h3', {text: 'Training runs'}),
    status.runs.length ? table(['Run', 'State', 'Dataset', 'Progress', 'Fine-tuned model', 'Created (UTC)'], status.runs.map((r) => [
      r.id, r.state, r.dataset_name,
      el('span', {class: 'progress'}, el('progress', {max: '100', value: String(r.progress_percent ?? 0)}), ` ${r.progress_percent ?? 0}%`),
      r.fine_tuned_model || r.error || '–', when(r.created_at)]), {'data-testid': 'runs-table'}) : el('p', {class: 'muted', text: 'No training runs yet.'}),
    el('h3', {text: 'Datasets'}),
    status.datasets.length ? table(['Dataset', 'Built (UTC)', 'Examples', 'Corrected', 'Confirmed', 'Human labels only'], status.datasets.map((d) => [
      d.name, when(d.created_at), String(d.examples), String(d.corrected_examples), String(d.confirmed_examples), d.human_only ? 'yes' : 'no']), {'data-testid': 'datasets-table'})
      : el('p', {class: 'muted', text: 'No datasets yet.'}));
}

async function loadStatus() {
  const {body} = await call('GET', 'status', {query: {agent_id: state.agent.id}});
  renderStatus(body);
}

// --- views, keys, start --------------------------------------------------------------------------------
async function show(view) {
  state.view = VIEWS.includes(view) ? view : 'review';
  for (const name of VIEWS) {
    $(`view-${name}`).hidden = name !== state.view;
    const tab = $(`tab-${name}`);
    tab.classList.toggle('current', name === state.view);
    tab.setAttribute('aria-current', name === state.view ? 'page' : 'false');
  }
  if (!state.agent) return;
  try {
    if (state.view === 'review') await loadQueue({keep: true});
    else if (state.view === 'judge') await loadJudge();
    else if (state.view === 'golden') await loadGolden();
    else await loadStatus();
    banner('');
  } catch (error) {
    failed(error);
  }
}

function editing(target) {
  return target instanceof HTMLElement && (target.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(target.tagName));
}

function onKey(event) {
  if ((event.ctrlKey || event.metaKey) && event.key === 'Enter') {
    event.preventDefault();
    if (state.view === 'review') save();
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if ($('help').open) return;
  if (editing(event.target)) {
    if (event.key === 'Escape') event.target.blur();
    return;
  }
  if (event.key === '?') {
    event.preventDefault();
    $('help').showModal();
    return;
  }
  if (state.view !== 'review') return;
  if (event.key === 'j') select(state.selected + 1);
  else if (event.key === 'k') select(state.selected - 1);
  else if (event.key in REWARD_BANDS) setReward(REWARD_BANDS[event.key]);
  else if (event.key === 't') $('expected-tool').focus();
  else if (event.key === 's') save();
  else return;
  event.preventDefault();
}

function bind() {
  for (const name of VIEWS) $(`tab-${name}`).addEventListener('click', () => { location.hash = name; });
  window.addEventListener('hashchange', () => {
    if (/^#(token|key)=/.test(location.hash)) { // a link with credentials opened in this tab
      takeCredentials();
      banner('');
      start();
      return;
    }
    show(location.hash.slice(1));
  });
  $('agent-select').addEventListener('change', (event) => {
    state.agent = state.agents.find((a) => a.id === event.target.value) || null;
    if (state.agent) localStorage.setItem(AGENT_KEY, state.agent.id);
    state.tool = '';
    fillAgentControls();
    show(state.view);
  });
  $('tool-filter').addEventListener('change', (event) => {
    state.tool = event.target.value;
    loadQueue().catch(failed);
  });
  $('refresh-queue').addEventListener('click', () => loadQueue({keep: true}).catch(failed));
  $('more').addEventListener('click', () => {
    state.limit = Math.min(500, state.limit + 50);
    loadQueue({keep: true}).catch(failed);
  });
  $('reward').addEventListener('input', (event) => setReward(event.target.value));
  for (const button of document.querySelectorAll('[data-reward]')) {
    button.addEventListener('click', () => setReward(Number(button.dataset.reward)));
  }
  $('expected-tool').addEventListener('change', toolChanged);
  $('expected-arguments').addEventListener('input', validateArguments);
  $('format-arguments').addEventListener('click', () => {
    const checked = argumentProblems($('expected-arguments').value, null);
    if (checked.value !== undefined) $('expected-arguments').value = pretty(checked.value);
    validateArguments();
  });
  $('label-form').addEventListener('submit', (event) => {
    event.preventDefault();
    save();
  });
  $('add-golden').addEventListener('click', addGolden);
  $('golden-file').addEventListener('change', (event) => {
    const [file] = event.target.files;
    if (file) importGolden(file);
    event.target.value = '';
  });
  $('help-button').addEventListener('click', () => $('help').showModal());
  $('help-close').addEventListener('click', () => $('help').close());
  document.addEventListener('keydown', onKey);
}

async function start() {
  try {
    await loadAgents();
    banner('');
  } catch (error) {
    failed(error);
    return;
  }
  await show(location.hash.slice(1) || 'review');
  document.body.dataset.ready = 'true';
}

takeCredentials();
bind();
start();
