// Charts as inline SVG, built element by element (no innerHTML, no inline style: colours are CSS classes).

import {svg} from './dom.js';

/**
 * Grouped vertical bars with 95% interval whiskers, on a 0–1 scale shown as percent.
 * groups: [{label, bars: [{name, value, low, high, cls}]}]; legend: [{name, cls}].
 */
export function intervalBars({title, groups, legend, width = 560, height = 260}) {
  const margin = {top: 18 + 16 * (legend || []).length, right: 12, bottom: 44, left: 44};
  height += margin.top - 18;
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const y = (v) => margin.top + plotH * (1 - Math.max(0, Math.min(1, v)));
  const root = svg('svg', {viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', class: 'chart', 'aria-label': title},
    svg('title', {text: title}));
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    root.append(
      svg('line', {x1: margin.left, x2: width - margin.right, y1: y(tick), y2: y(tick), class: 'grid'}),
      svg('text', {x: margin.left - 6, y: y(tick) + 4, class: 'tick', 'text-anchor': 'end', text: `${Math.round(tick * 100)}%`}));
  }
  const groupW = plotW / Math.max(groups.length, 1);
  groups.forEach((group, g) => {
    const bars = group.bars;
    const barW = Math.min(56, (groupW - 24) / Math.max(bars.length, 1));
    const start = margin.left + g * groupW + (groupW - barW * bars.length) / 2;
    bars.forEach((bar, b) => {
      const x = start + b * barW;
      if (bar.value === null || bar.value === undefined) {
        root.append(svg('text', {x: x + barW / 2, y: y(0) - 6, class: 'tick', 'text-anchor': 'middle', text: 'n/a'}));
        return;
      }
      const top = y(bar.value);
      root.append(svg('rect', {x: x + 3, y: top, width: barW - 6, height: y(0) - top, class: `bar ${bar.cls || ''}`},
        svg('title', {text: `${bar.name}: ${(100 * bar.value).toFixed(1)}%` +
          (bar.low !== null && bar.low !== undefined ? ` [${(100 * bar.low).toFixed(1)}, ${(100 * bar.high).toFixed(1)}]` : '')})));
      if (bar.low !== null && bar.low !== undefined && bar.high !== null && bar.high !== undefined) {
        const cx = x + barW / 2;
        root.append(
          svg('line', {x1: cx, x2: cx, y1: y(bar.low), y2: y(bar.high), class: 'whisker'}),
          svg('line', {x1: cx - 6, x2: cx + 6, y1: y(bar.low), y2: y(bar.low), class: 'whisker'}),
          svg('line', {x1: cx - 6, x2: cx + 6, y1: y(bar.high), y2: y(bar.high), class: 'whisker'}));
      }
      const labelY = y(Math.max(bar.value, bar.high ?? bar.value)) - 6;
      root.append(svg('text', {x: x + barW / 2, y: labelY, class: 'value', 'text-anchor': 'middle', text: `${(100 * bar.value).toFixed(1)}`}));
    });
    root.append(svg('text', {x: margin.left + g * groupW + groupW / 2, y: height - margin.bottom + 18, class: 'label', 'text-anchor': 'middle', text: group.label}));
  });
  (legend || []).forEach((item, i) => {
    root.append(svg('rect', {x: margin.left, y: 4 + 16 * i, width: 12, height: 12, class: `bar ${item.cls}`}),
      svg('text', {x: margin.left + 18, y: 14 + 16 * i, class: 'legend', text: item.name}));
  });
  return root;
}

/** A small interval strip: the point and its 95% interval on [min, max]. */
export function intervalStrip(value, low, high, {min = 0, max = 1, width = 160, height = 16} = {}) {
  const x = (v) => 4 + (width - 8) * (Math.max(min, Math.min(max, v)) - min) / (max - min);
  const root = svg('svg', {viewBox: `0 0 ${width} ${height}`, width, height, class: 'strip', 'aria-hidden': 'true'},
    svg('line', {x1: x(min), x2: x(max), y1: height / 2, y2: height / 2, class: 'axis'}));
  if (min < 0) root.append(svg('line', {x1: x(0), x2: x(0), y1: 2, y2: height - 2, class: 'axis'}));
  if (value === null || value === undefined) return root;
  if (low !== null && low !== undefined && high !== null && high !== undefined) {
    root.append(svg('line', {x1: x(low), x2: x(high), y1: height / 2, y2: height / 2, class: 'whisker'}));
  }
  root.append(svg('circle', {cx: x(value), cy: height / 2, r: 4, class: 'point'}));
  return root;
}
