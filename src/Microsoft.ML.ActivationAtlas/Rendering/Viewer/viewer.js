// Activation atlas viewer: pan/zoom through nested grids, inspect cells, per-class view. No network access needed.
(function () {
  'use strict';
  const A = JSON.parse(document.getElementById('atlas-data').textContent);
  const MIN_CELL_PX = 36;          // the finest grid whose cells are at least this big on screen is drawn
  const MAX_SCALE = 64;
  const canvas = document.getElementById('atlas-canvas');
  const ctx = canvas.getContext('2d');
  const tooltip = document.getElementById('tooltip');
  const $ = id => document.getElementById(id);

  const state = {
    scale: 1, offsetX: 0, offsetY: 0, base: 1, width: 1, height: 1,
    level: 0, hover: null, selected: null,
    classIndex: null, classValues: {}, density: false, histogram: null, ready: false,
    // Inverted icons or example images: the global switch, and cells switched the other way ("size,x,y").
    showExamples: false, flipped: new Set(),
    labels: !!A.labels, placedLabels: [],
    marks: null, marksDrawn: [],
  };
  const LABEL_FONT = 11;
  const LABEL_FONT_CSS = 'bold ' + LABEL_FONT + 'px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
  // Room kept for the axis captions of a class comparison (below and on the left).
  const AXIS_BOTTOM = A.axes ? 40 : 0, AXIS_LEFT = A.axes && A.axes.vertical ? 30 : 0;

  // ---- data ---------------------------------------------------------------------------------------------------
  const levels = A.levels.map(l => {
    const byKey = new Map();
    let maxCount = 1;
    const cells = l.cells.map((c, i) => {
      const cell = { level: l.size, index: i, x: c[0], y: c[1], n: c[2], sheet: c[3], top: c[4], examples: c[5],
        inverted: c[6] ? { fidelity: c[6][0], plausibility: c[6][1], steps: c[6][2], warm: !!c[6][3],
          agreement: c[6][4] ?? null, cellClass: c[6][5] ?? null, iconClass: c[6][6] ?? null } : null, exampleSheet: c[7] ?? -1 };
      byKey.set(c[0] + ',' + c[1], cell);
      return cell;
    });
    const counts = cells.map(c => c.n).sort((a, b) => a - b);
    if (counts.length) maxCount = Math.max(1, counts[Math.floor(0.9 * (counts.length - 1))]);
    const load = src => { const img = new Image(); img.onload = draw; img.src = src; return img; };
    const sheets = l.sheets.map(load);
    const exampleSheets = (l.exampleSheets || []).map(load);
    const invertedShare = cells.length ? cells.filter(c => c.inverted).length / cells.length : 0;
    return { size: l.size, iconPx: l.iconPx, sheetCols: l.sheetCols, perSheet: l.perSheet, cells, byKey, densityRef: maxCount, sheets, exampleSheets, invertedShare };
  });

  const valueName = (n => n.charAt(0).toUpperCase() + n.slice(1))(A.valueName || 'Attribution');
  $('value-name').textContent = valueName;
  const fmtCount = n => n.toLocaleString('en-US');
  const fmtValue = v => {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    const a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
    return Number(v.toPrecision(3)).toString();
  };

  // ---- icons: an inverted cell shows its icon or its example image ---------------------------------------------------
  const cellKey = cell => cell.level + ',' + cell.x + ',' + cell.y;
  function showsExample(cell) {
    if (!cell.inverted) return true;
    return state.showExamples !== state.flipped.has(cellKey(cell));
  }
  // The sheet image and the icon's index in it, or null.
  function iconOf(level, cell) {
    const example = cell.inverted && showsExample(cell) && cell.exampleSheet >= 0;
    const index = example ? cell.exampleSheet : cell.sheet;
    if (index < 0) return null;
    const sheet = (example ? level.exampleSheets : level.sheets)[Math.floor(index / level.perSheet)];
    return sheet ? { sheet, k: index % level.perSheet } : null;
  }

  // ---- geometry -------------------------------------------------------------------------------------------------
  function resize() {
    const r = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(r.width * dpr));
    canvas.height = Math.max(1, Math.round(r.height * dpr));
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const first = state.width === 1;
    state.width = r.width; state.height = r.height;
    state.base = Math.max(1, Math.min(r.width - AXIS_LEFT, r.height - AXIS_BOTTOM) - 16);
    if (first) fit();
    draw();
  }

  function fit() {
    state.scale = 1;
    state.offsetX = AXIS_LEFT + (state.width - AXIS_LEFT - state.base) / 2;
    state.offsetY = (state.height - AXIS_BOTTOM - state.base) / 2;
  }

  function chooseLevel() {
    let chosen = 0;
    // With inverted icons shown, a grid mostly of example stand-ins (the icon budget ran out) is drawn only once its
    // cells are four times the usual size, so the atlas opens on the grids with icons and zooming still reaches it.
    const demote = A.inverted > 0 && !state.showExamples;
    for (let i = 0; i < levels.length; i++) {
      const need = demote && levels[i].invertedShare < 0.5 ? 4 * MIN_CELL_PX : MIN_CELL_PX;
      if (state.base * state.scale / levels[i].size >= need) chosen = i;
    }
    state.level = chosen;
    const l = levels[chosen];
    $('level-label').textContent = 'grid ' + l.size + '×' + l.size + ' · zoom ' + state.scale.toFixed(1) + '×';
  }

  function cellRect(level, x, y) {
    const px = state.base * state.scale / level.size;
    return { left: state.offsetX + x * px, top: state.offsetY + y * px, size: px };
  }

  function cellAt(clientX, clientY) {
    const r = canvas.getBoundingClientRect();
    const level = levels[state.level];
    const px = state.base * state.scale / level.size;
    const x = Math.floor((clientX - r.left - state.offsetX) / px);
    const y = Math.floor((clientY - r.top - state.offsetY) / px);
    if (x < 0 || y < 0 || x >= level.size || y >= level.size) return null;
    return level.byKey.get(x + ',' + y) || null;
  }

  // ---- drawing --------------------------------------------------------------------------------------------------
  function classAlpha(level, cell) {
    if (state.classIndex === null) return 1;
    const values = state.classValues[state.classIndex];
    if (!values) return 0.15;
    const v = values.levels[level.size][cell.index];
    const max = values.max[level.size];
    return max > 0 ? Math.max(0, Math.min(1, v / max)) : 0;
  }

  function heatColor(t) {
    t = Math.max(-1, Math.min(1, t));
    const f = Math.round(255 - 255 * Math.abs(t));
    return t >= 0 ? 'rgba(255,' + f + ',' + f + ',0.6)' : 'rgba(' + f + ',' + f + ',255,0.6)';
  }

  // Opacity: the icon by the square root of its share over the largest (empty cells a faint ghost); significance: only
  // significant cells in full.
  function overlayAlpha(style, v, max) {
    if (style === 'opacity') return v > 0 ? Math.max(0.15, Math.sqrt(v / max)) : 0.07;
    if (style === 'significance') return v !== 0 ? 1 : 0.12;
    return 1;
  }

  function frameColor(t) {
    t = Math.max(-1, Math.min(1, t));
    const f = Math.round(200 - 200 * Math.abs(t));
    return t >= 0 ? 'rgb(230,' + f + ',' + f + ')' : 'rgb(' + f + ',' + f + ',230)';
  }

  function draw() {
    if (!state.ready) return;
    chooseLevel();
    ctx.clearRect(0, 0, state.width, state.height);
    const level = levels[state.level];
    const full = cellRect(level, 0, 0);
    ctx.strokeStyle = '#e4e4e4';
    ctx.strokeRect(full.left, full.top, full.size * level.size, full.size * level.size);
    const hist = state.histogram !== null ? A.histograms[state.histogram] : null;
    const histValues = hist ? hist.levels[level.size] : null;
    const histMax = histValues ? Math.max(1e-12, ...histValues.map(Math.abs)) : 1;
    const style = hist ? hist.style : null;
    for (const cell of level.cells) {
      const r = cellRect(level, cell.x, cell.y);
      if (r.left > state.width || r.top > state.height || r.left + r.size < 0 || r.top + r.size < 0) continue;
      const hv = histValues ? histValues[cell.y * level.size + cell.x] : 0;
      const alpha = classAlpha(level, cell) * overlayAlpha(style, hv, histMax);
      let s = r.size;
      if (state.density) s *= Math.max(0.25, Math.min(1, Math.sqrt(cell.n / level.densityRef)));
      const pad = (r.size - s) / 2;
      const icon = alpha > 0.01 ? iconOf(level, cell) : null;
      if (icon) {
        const { sheet, k } = icon;
        if (sheet.complete && sheet.naturalWidth) {
          ctx.globalAlpha = alpha;
          ctx.imageSmoothingEnabled = s > level.iconPx ? false : true;
          ctx.drawImage(sheet, (k % level.sheetCols) * level.iconPx, Math.floor(k / level.sheetCols) * level.iconPx,
            level.iconPx, level.iconPx, r.left + pad, r.top + pad, s, s);
          ctx.globalAlpha = 1;
        }
      }
      // Where the atlas has inverted icons, a cell without one (an example stand-in) gets a corner mark.
      if (A.inverted > 0 && !cell.inverted && alpha > 0.01 && r.size >= 24) {
        const m = Math.min(10, r.size / 4);
        ctx.fillStyle = 'rgba(200, 130, 0, 0.85)';
        ctx.beginPath(); ctx.moveTo(r.left + r.size - m, r.top); ctx.lineTo(r.left + r.size, r.top); ctx.lineTo(r.left + r.size, r.top + m); ctx.closePath(); ctx.fill();
      }
      if (style === 'heat' && hv !== 0) { ctx.fillStyle = heatColor(hv / histMax); ctx.fillRect(r.left, r.top, r.size, r.size); }
      if (style === 'significance' && hv !== 0) {
        const w = Math.max(2, r.size / 10);
        ctx.lineWidth = w; ctx.strokeStyle = frameColor(hv / histMax);
        ctx.strokeRect(r.left + w / 2, r.top + w / 2, r.size - w, r.size - w);
      }
    }
    state.placedLabels = state.labels && state.classIndex === null ? placeLabels(level) : [];
    if (state.placedLabels.length) {
      ctx.font = LABEL_FONT_CSS;
      ctx.textBaseline = 'middle';
      for (const l of state.placedLabels) {
        const left = state.offsetX + l.left, top = state.offsetY + l.top;
        if (left > state.width || top > state.height || left + l.width < 0 || top + l.height < 0) continue;
        ctx.fillStyle = 'rgba(255,255,255,0.85)';
        ctx.fillRect(left, top, l.width, l.height);
        ctx.fillStyle = '#141414';
        ctx.fillText(l.text, left + A.labels.paddingFonts * LABEL_FONT, top + l.height / 2);
      }
    }
    drawMarks(level);
    for (const [cell, color, width] of [[state.hover, '#ff9800', 2], [state.selected, '#1565c0', 3]]) {
      if (!cell || cell.level !== level.size) continue;
      const r = cellRect(level, cell.x, cell.y);
      ctx.lineWidth = width; ctx.strokeStyle = color;
      ctx.strokeRect(r.left + width / 2, r.top + width / 2, r.size - width, r.size - width);
    }
  }

  // Cells marked by a page linking several atlases (where the images of a cell selected elsewhere landed here), framed
  // with their image counts.
  function drawMarks(level) {
    const marks = (state.marks && state.marks[level.size]) || [];
    state.marksDrawn = marks.map(([x, y, n]) => ({ grid: level.size, x, y, n }));
    if (!marks.length) return;
    ctx.font = 'bold 11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
    ctx.textBaseline = 'top';
    for (const [x, y, n] of marks) {
      const r = cellRect(level, x, y);
      ctx.lineWidth = 3; ctx.strokeStyle = '#d81b60';
      ctx.strokeRect(r.left + 1.5, r.top + 1.5, r.size - 3, r.size - 3);
      const text = String(n), w = ctx.measureText(text).width + 6;
      ctx.fillStyle = '#d81b60'; ctx.fillRect(r.left, r.top, w, 14);
      ctx.fillStyle = '#fff'; ctx.fillText(text, r.left + 3, r.top + 1.5);
    }
  }

  // The labelling rule of AtlasLabels.Place (C#), on the cells as they are on screen: strong cells (top value above a
  // fraction of the grid's largest), cells big enough for the font, boxes at most a few cells wide, strongest first,
  // no overlaps, and no repeat of a class within a few cells. Boxes are in pixels from the atlas's top-left corner.
  function placeLabels(level) {
    const L = A.labels, placed = [];
    const px = state.base * state.scale / level.size;
    if (LABEL_FONT < L.minimumFontPixels || px < L.minimumCellFonts * LABEL_FONT) return placed;
    let max = 0;
    for (const c of level.cells) if (c.top.length) max = Math.max(max, c.top[0][1]);
    if (!(max > 0)) return placed;
    ctx.font = LABEL_FONT_CSS;
    const h = LABEL_FONT * L.heightFonts, side = px * level.size;
    // With a histogram shown, cells it fades below half opacity carry no label.
    const hist = state.histogram !== null ? A.histograms[state.histogram] : null;
    const values = hist ? hist.levels[level.size] : null;
    const histMax = values ? Math.max(1e-12, ...values.map(Math.abs)) : 1;
    const candidates = level.cells.filter(c => c.top.length && c.top[0][1] > 0 && c.top[0][1] > L.minimumFraction * max
        && (!hist || overlayAlpha(hist.style, values[c.y * level.size + c.x], histMax) >= 0.5))
      .sort((a, b) => b.top[0][1] - a.top[0][1] || a.y - b.y || a.x - b.x);
    for (const c of candidates) {
      const k = c.top[0][0], text = A.classes[k] ?? String(k);
      const width = ctx.measureText(text).width + 2 * L.paddingFonts * LABEL_FONT;
      if (width > L.maximumWidthCells * px) continue;
      const label = {
        x: c.x, y: c.y, classIndex: k, text, value: c.top[0][1], width, height: h,
        left: Math.min(Math.max(0, (c.x + 0.5) * px - width / 2), Math.max(0, side - width)),
        top: (c.y + 1) * px - h - 0.1 * LABEL_FONT,
      };
      const blocked = placed.some(p => (label.left < p.left + p.width && p.left < label.left + width && label.top < p.top + p.height && p.top < label.top + h)
        || (p.classIndex === k && Math.max(Math.abs(p.x - c.x), Math.abs(p.y - c.y)) <= L.sameClassSpacing));
      if (!blocked) placed.push(label);
    }
    return placed;
  }

  // ---- panel ----------------------------------------------------------------------------------------------------
  function showCell(cell) {
    $('panel-hint').hidden = !!cell;
    $('cell-info').hidden = !cell;
    if (!cell) return;
    $('cell-title').textContent = 'Cell (' + cell.x + ', ' + cell.y + ') of the ' + cell.level + '×' + cell.level + ' grid';
    $('cell-count').textContent = 'Count: ' + fmtCount(cell.n) + (cell.n === 1 ? ' image' : ' images');
    showCellIcon(cell);
    const tbody = $('cell-classes').querySelector('tbody');
    tbody.replaceChildren();
    for (const [k, v] of cell.top) {
      const tr = document.createElement('tr');
      const name = document.createElement('td'); name.textContent = A.classes[k] ?? String(k);
      const value = document.createElement('td'); value.textContent = fmtValue(v);
      tr.append(name, value); tbody.append(tr);
    }
    $('cell-classes').hidden = cell.top.length === 0;
    const cv = $('cell-class-value');
    const values = state.classIndex !== null ? state.classValues[state.classIndex] : null;
    cv.hidden = !values;
    if (values) cv.textContent = valueName + ' to “' + A.classes[state.classIndex] + '”: ' + fmtValue(values.levels[cell.level][cell.index]);
    const ch = $('cell-histogram');
    const hist = state.histogram !== null ? A.histograms[state.histogram] : null;
    ch.hidden = !hist;
    if (hist) ch.textContent = hist.name + ': ' + fmtValue(hist.levels[cell.level][cell.y * cell.level + cell.x]);
    const ex = $('cell-examples');
    ex.replaceChildren();
    for (const row of cell.examples) {
      const fig = document.createElement('figure');
      const img = document.createElement('img');
      img.src = 'examples/' + row + '.png';
      img.alt = 'example row ' + row;
      const cap = document.createElement('figcaption');
      cap.textContent = (A.exampleNames && A.exampleNames[row]) || ('row ' + row);
      cap.title = cap.textContent;
      fig.append(img, cap); ex.append(fig);
    }
  }

  // What the cell is drawn as: its inverted icon's fidelity, or that it is an example stand-in; and its switch.
  function showCellIcon(cell) {
    const p = $('cell-icon'), button = $('cell-icon-switch');
    p.replaceChildren();
    button.hidden = !cell.inverted;
    if (cell.inverted) {
      const i = cell.inverted;
      p.textContent = 'Inverted icon: fidelity ' + fmtValue(i.fidelity)
        + (i.plausibility !== null && i.plausibility !== undefined ? ', plausibility ' + fmtValue(i.plausibility) : '')
        + ' · ' + i.steps + ' steps' + (i.warm ? ', started from its parent cell’s icon' : '')
        + (showsExample(cell) ? ' (example image shown)' : '');
      // Downstream: how the pooled features after the layer (and the class head on them) see the icon.
      if (i.agreement !== null || i.iconClass !== null) {
        const d = document.createElement('span');
        d.id = 'cell-agreement';
        d.className = 'agreement' + (i.cellClass !== null && i.iconClass !== null && i.cellClass !== i.iconClass ? ' mismatch' : '');
        d.textContent = (i.agreement !== null ? 'Downstream agreement ' + fmtValue(i.agreement) : 'Downstream')
          + (i.iconClass !== null ? ' · icon’s top class ' + A.classes[i.iconClass]
            + (i.cellClass !== null ? (i.cellClass === i.iconClass ? ', as the cell’s' : ', the cell’s ' + A.classes[i.cellClass]) : '') : '');
        p.append(document.createElement('br'), d);
      }
      button.textContent = showsExample(cell) ? 'Show the inverted icon' : 'Show the example image';
    } else if (A.inverted > 0) {
      const span = document.createElement('span');
      span.className = 'stand-in';
      span.textContent = 'Example stand-in: this cell has no inverted icon';
      p.append(span);
    } else {
      p.textContent = 'Drawn as its example image';
    }
  }
  $('cell-icon-switch').addEventListener('click', () => {
    const cell = state.selected || state.hover;
    if (!cell || !cell.inverted) return;
    const key = cellKey(cell);
    if (state.flipped.has(key)) state.flipped.delete(key); else state.flipped.add(key);
    showCellIcon(cell);
    draw();
  });

  function showTooltip(cell, clientX, clientY) {
    if (!cell) { tooltip.hidden = true; return; }
    const r = canvas.getBoundingClientRect();
    const top = cell.top.length ? ' · ' + (A.classes[cell.top[0][0]] ?? cell.top[0][0]) + ' ' + fmtValue(cell.top[0][1]) : '';
    const icon = cell.inverted ? ' · fidelity ' + fmtValue(cell.inverted.fidelity) : A.inverted > 0 ? ' · example stand-in' : '';
    tooltip.textContent = 'n = ' + fmtCount(cell.n) + top + icon;
    tooltip.style.left = (clientX - r.left + 14) + 'px';
    tooltip.style.top = (clientY - r.top + 14) + 'px';
    tooltip.hidden = false;
  }

  // ---- interaction ----------------------------------------------------------------------------------------------
  function zoomAt(factor, sx, sy) {
    const next = Math.max(1, Math.min(MAX_SCALE, state.scale * factor));
    const f = next / state.scale;
    state.offsetX = sx - (sx - state.offsetX) * f;
    state.offsetY = sy - (sy - state.offsetY) * f;
    state.scale = next;
    draw();
  }

  let drag = null;
  canvas.addEventListener('mousedown', e => { drag = { x: e.clientX, y: e.clientY, ox: state.offsetX, oy: state.offsetY, moved: false }; });
  window.addEventListener('mousemove', e => {
    if (drag) {
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) { drag.moved = true; canvas.classList.add('dragging'); }
      if (drag.moved) { state.offsetX = drag.ox + dx; state.offsetY = drag.oy + dy; draw(); }
      return;
    }
    if (e.target !== canvas) return;
    const cell = cellAt(e.clientX, e.clientY);
    if (cell !== state.hover) { state.hover = cell; draw(); }
    showTooltip(cell, e.clientX, e.clientY);
    if (!state.selected) showCell(cell);
  });
  window.addEventListener('mouseup', e => {
    if (drag && !drag.moved && e.target === canvas) {
      const cell = cellAt(e.clientX, e.clientY);
      state.selected = cell;
      showCell(cell);
      draw();
      postSelection();
    }
    drag = null;
    canvas.classList.remove('dragging');
  });
  canvas.addEventListener('mouseleave', () => { state.hover = null; tooltip.hidden = true; if (!state.selected) showCell(null); draw(); });
  canvas.addEventListener('wheel', e => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    zoomAt(Math.exp(-e.deltaY * 0.0015), e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
  $('zoom-in').addEventListener('click', () => zoomAt(2, state.width / 2, state.height / 2));
  $('zoom-out').addEventListener('click', () => zoomAt(0.5, state.width / 2, state.height / 2));
  $('zoom-reset').addEventListener('click', () => { fit(); draw(); });
  $('density').addEventListener('change', e => { state.density = e.target.checked; draw(); });
  $('labels-toggle').hidden = !A.labels;
  $('icons-toggle').hidden = !(A.inverted > 0);
  $('show-examples').addEventListener('change', e => {
    state.showExamples = e.target.checked;
    state.flipped.clear();
    if (state.selected) showCell(state.selected);
    draw();
  });
  $('labels').addEventListener('change', e => { state.labels = e.target.checked && !!A.labels; draw(); });
  if (A.axes) {
    $('axis-x').hidden = false;
    $('axis-left').textContent = A.axes.left ? '← ' + A.axes.left : '';
    $('axis-right').textContent = A.axes.right ? A.axes.right + ' →' : '';
    $('axis-title').textContent = A.axes.horizontal || '';
    if (A.axes.vertical) {
      const span = document.createElement('span');
      span.textContent = A.axes.vertical;
      $('axis-y').append(span);
      $('axis-y').hidden = false;
    }
  }

  // ---- per-class view -------------------------------------------------------------------------------------------
  const classList = $('class-names');
  for (const name of A.classes) { const o = document.createElement('option'); o.value = name; classList.append(o); }
  if (A.classes.length === 0) $('class-search').hidden = true;

  function loadClass(k) {
    return new Promise((resolve, reject) => {
      if (state.classValues[k]) { resolve(); return; }
      const s = document.createElement('script');
      s.src = A.classScript.replace('{index}', k);
      s.onload = () => state.classValues[k] ? resolve() : reject(new Error('no data in ' + s.src));
      s.onerror = () => reject(new Error('cannot load ' + s.src));
      document.head.append(s);
    });
  }

  function receiveClass(k, perLevel) {
    const max = {};
    for (const size of Object.keys(perLevel)) max[size] = Math.max(0, ...perLevel[size]);
    state.classValues[k] = { levels: perLevel, max };
  }

  async function selectClass(name) {
    const msg = $('class-message');
    const q = name.trim().toLowerCase();
    if (!q) return clearClass();
    let k = A.classes.findIndex(c => c.toLowerCase() === q);
    if (k < 0) {
      const partial = A.classes.map((c, i) => [c, i]).filter(([c]) => c.toLowerCase().includes(q));
      if (partial.length === 1) k = partial[0][1];
    }
    if (k < 0) { msg.className = ''; msg.textContent = 'No class named “' + name.trim() + '”'; return; }
    try { await loadClass(k); } catch (err) { msg.className = ''; msg.textContent = err.message; return; }
    state.classIndex = k;
    $('class-input').value = A.classes[k];
    msg.className = 'active';
    msg.textContent = 'Per-class view: ' + A.classes[k];
    $('class-clear').hidden = false;
    showCell(state.selected);
    draw();
    postLinked({ type: 'class', name: A.classes[k] });
  }

  function clearClass() {
    state.classIndex = null;
    $('class-message').textContent = '';
    $('class-clear').hidden = true;
    $('class-input').value = '';
    showCell(state.selected);
    draw();
    postLinked({ type: 'class', name: null });
  }

  $('class-search').addEventListener('submit', e => { e.preventDefault(); selectClass($('class-input').value); });
  $('class-clear').addEventListener('click', clearClass);

  // ---- histograms -----------------------------------------------------------------------------------------------
  const histSelect = $('histogram');
  (A.histograms || []).forEach((h, i) => { const o = document.createElement('option'); o.value = String(i); o.textContent = h.name; histSelect.append(o); });
  histSelect.hidden = !(A.histograms && A.histograms.length);
  function showHistogram(index) {
    state.histogram = index;
    histSelect.value = index === null ? '' : String(index);
    showCell(state.selected);
    draw();
    listConcepts();
  }
  histSelect.addEventListener('change', () => showHistogram(histSelect.value === '' ? null : Number(histSelect.value)));

  // The ranked concepts of the overlay shown, on the grid on screen: the largest shares, or the most over- and
  // under-represented significant cells. Clicking one pins its cell.
  function fmtOverlay(style, v) {
    const shown = state.histogram !== null ? A.histograms[state.histogram] : null;
    if (style === 'opacity') return (v * 100).toFixed(v >= 0.1 ? 0 : v >= 0.001 ? 1 : 2) + '% of the ' + ((shown && shown.unit) || 'images');
    if (style === 'significance') { const r = Math.pow(2, v); return r >= 1 ? '×' + r.toPrecision(3) : '×1/' + (1 / r).toPrecision(3); }
    return fmtValue(v);
  }

  function conceptItem(level, cell, rank, value, style) {
    const li = document.createElement('li');
    const icon = document.createElement('canvas');
    icon.width = icon.height = 36;
    const shown = iconOf(level, cell);
    const sheet = shown ? shown.sheet : null, k = shown ? shown.k : 0;
    if (sheet && sheet.complete && sheet.naturalWidth)
      icon.getContext('2d').drawImage(sheet, (k % level.sheetCols) * level.iconPx, Math.floor(k / level.sheetCols) * level.iconPx, level.iconPx, level.iconPx, 0, 0, 36, 36);
    if (style === 'significance') icon.style.borderColor = frameColor(value > 0 ? 1 : -1);
    const rankEl = document.createElement('span'); rankEl.className = 'rank'; rankEl.textContent = rank + '.';
    const text = document.createElement('div');
    const what = document.createElement('div'); what.className = 'what';
    what.textContent = cell.top.length ? (A.classes[cell.top[0][0]] ?? String(cell.top[0][0])) : 'cell (' + cell.x + ', ' + cell.y + ')';
    const val = document.createElement('div'); val.className = 'value';
    val.textContent = fmtOverlay(style, value) + ' · ' + fmtCount(cell.n) + ' atlas images';
    text.append(what, val);
    li.append(rankEl, icon, text);
    li.dataset.cell = cell.x + ',' + cell.y;
    li.addEventListener('click', () => { state.selected = cell; showCell(cell); draw(); postSelection(); });
    return li;
  }

  function listConcepts() {
    const section = $('concepts'), list = $('concepts-list');
    list.replaceChildren();
    const hist = state.histogram !== null ? A.histograms[state.histogram] : null;
    section.hidden = !hist;
    if (!hist) return;
    const level = levels[state.level], values = hist.levels[level.size];
    const ranked = level.cells.map(c => [c, values[c.y * level.size + c.x]]).filter(([, v]) => v !== 0);
    $('concepts-title').textContent = hist.name + ' · ' + level.size + '×' + level.size + ' grid';
    const groups = hist.style === 'significance'
      ? [['More common', ranked.filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1])], ['Less common', ranked.filter(([, v]) => v < 0).sort((a, b) => a[1] - b[1])]]
      : [['Top concepts', ranked.sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))]];
    for (const [title, items] of groups) {
      const h = document.createElement('h3');
      h.textContent = title + (items.length ? '' : ': none significant');
      list.append(h);
      items.slice(0, 10).forEach(([cell, v], i) => list.append(conceptItem(level, cell, i + 1, v, hist.style)));
    }
  }

  // ---- linked atlases -------------------------------------------------------------------------------------------
  // Shown in a frame of a page that links several atlases (LinkedViewerWriter), the viewer tells the page which cell
  // is selected and which class is chosen, and takes from it the class to show and the cells to mark.
  function postLinked(message) {
    if (window.parent !== window) window.parent.postMessage(Object.assign({ atlasViewer: true, layer: A.layer }, message), '*');
  }
  function postSelection() {
    const c = state.selected;
    postLinked({ type: 'select', cell: c ? { grid: c.level, x: c.x, y: c.y, n: c.n } : null });
  }
  window.addEventListener('message', e => {
    const m = e.data;
    if (!m || !m.atlasLinked || e.source !== window.parent) return;
    if (m.type === 'class') {
      if (m.name === null) { if (state.classIndex !== null) clearClass(); }
      else if (state.classIndex === null || A.classes[state.classIndex] !== m.name) selectClass(m.name);
    } else if (m.type === 'marks') {
      state.marks = m.marks;
      if (m.marks && state.selected) { state.selected = null; showCell(null); }
      draw();
    }
  });

  // ---- start ----------------------------------------------------------------------------------------------------
  document.title = A.title;
  $('atlas-title').textContent = A.title;
  $('atlas-subtitle').textContent = 'Model: ' + A.model + ' · Layer: ' + A.layer + ' · ' + fmtCount(A.rows) + ' images · grids ' + levels.map(l => l.size).join(', ');
  if (A.iconNote) { $('icon-note').textContent = A.iconNote; $('icon-note').hidden = false; }
  if (A.iconQuality) {
    const q = A.iconQuality, parts = [];
    if (q.fidelity !== null) parts.push('fidelity ' + fmtValue(q.fidelity));
    if (q.plausibility !== null) parts.push('plausibility ' + fmtValue(q.plausibility));
    if (q.agreement !== null) parts.push('downstream agreement ' + fmtValue(q.agreement));
    $('icon-quality').textContent = 'Inverted icons (' + fmtCount(q.icons) + '): median ' + parts.join(', ')
      + (q.classCompared > 0 ? ' · top class as the cell’s in ' + fmtCount(q.classMatches) + ' of ' + fmtCount(q.classCompared) : '');
    $('icon-quality').hidden = false;
  }
  window.addEventListener('resize', resize);
  state.ready = true;
  resize();
  if (A.initialHistogram !== null && A.initialHistogram !== undefined) showHistogram(A.initialHistogram);
  // The list follows the grid on screen and fills in its icons once the sheets load.
  let listedLevel = state.level;
  const relist = () => { if (state.histogram !== null && listedLevel !== state.level) { listedLevel = state.level; listConcepts(); } };
  canvas.addEventListener('wheel', relist);
  for (const b of ['zoom-in', 'zoom-out', 'zoom-reset']) $(b).addEventListener('click', relist);
  levels.forEach(l => l.sheets.forEach(img => img.addEventListener('load', () => { if (state.histogram !== null) listConcepts(); })));

  // A small API for scripts and tests.
  window.atlasViewer = {
    state, levels, receiveClass, selectClass, clearClass, showsExample,
    gridSize: () => levels[state.level].size,
    labels: () => state.placedLabels.map(l => Object.assign({}, l)),
    showHistogram,
    marked: () => state.marksDrawn.slice(),
    zoom: (factor) => zoomAt(factor, state.width / 2, state.height / 2),
    cellCenter(x, y) {
      const level = levels[state.level];
      const r = cellRect(level, x, y), c = canvas.getBoundingClientRect();
      return { x: c.left + r.left + r.size / 2, y: c.top + r.top + r.size / 2 };
    },
  };
})();
