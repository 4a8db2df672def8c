// Module hooks registered by bin/strata.js (they run on Node's loader thread, after tsx's).
// Architecture files are ES modules: a .ts file outside any `"type": "module"` package would
// otherwise be compiled as CommonJS (and tsx would route it through its CommonJS shims) and fail
// to import the ESM DSL, so every TypeScript file outside node_modules loads as format "module".
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (!r.url.startsWith("file:") || r.url.includes("/node_modules/") || r.format === "module") return r;
  const path = decodeURIComponent(r.url.split("?")[0]).replace(/\?.*$/, "");
  if (!/\.[cm]?tsx?$/.test(path) || /\.cts$/.test(path)) return r;
  return { url: path, format: "module", shortCircuit: true };
}
