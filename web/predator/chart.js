// A field's small chart: boids caught against frames, on the same axes in every field (0 to the
// round's frames, 0 to the most any field has caught), its own curve bold in its colour and the other fields' curves
// thin behind it, so the difference between policies shows without reading a number.

/** Draws on `ctx` (a canvas of `width` x `height` pixels) the curves of `fields`, `own` bold. */
export function drawChart(ctx, width, height, fields, own, colors) {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, width, height);
  ctx.strokeStyle = "#30363d";
  ctx.lineWidth = 1;
  ctx.strokeRect(0.5, 0.5, width - 1, height - 1);
  const frames = own.setup.frames;
  // The same height in every field: the most caught so far in any field (at least 10).
  const most = Math.max(10, ...fields.map((f) => f.caught));
  const pad = 2;
  const x = (frame) => pad + ((width - 2 * pad) * frame) / frames;
  const y = (caught) => height - pad - ((height - 2 * pad) * caught) / most;
  const curve = (field) => {
    const { history } = field;
    // One point per pixel column at most: the curve is a step function, so the column's last
    // value is what it shows.
    const every = Math.max(1, Math.floor(frames / width));
    ctx.beginPath();
    ctx.moveTo(x(0), y(0));
    for (let f = every; f < history.length; f += every) ctx.lineTo(x(f), y(history[f]));
    ctx.lineTo(x(history.length - 1), y(history[history.length - 1]));
    ctx.stroke();
  };
  for (const field of fields) {
    if (field === own) continue;
    ctx.strokeStyle = colors[field.policy] ?? "#8b949e";
    ctx.globalAlpha = 0.45;
    ctx.lineWidth = 1;
    curve(field);
  }
  ctx.globalAlpha = 1;
  ctx.strokeStyle = colors[own.policy] ?? "#e6edf3";
  ctx.lineWidth = 2;
  curve(own);
}
