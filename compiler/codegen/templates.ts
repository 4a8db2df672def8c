/**
 * Handlebars over templates/*.cu.hbs. Templates only arrange constants and spliced expressions;
 * device code lives in the header-only library templates/include/*.cuh.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Handlebars from "handlebars";

export const TEMPLATE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../templates");
export const INCLUDE_DIR = path.join(TEMPLATE_DIR, "include");

const cache = new Map<string, Handlebars.TemplateDelegate>();

export function renderTemplate(file: string, view: Record<string, unknown>): string {
  let t = cache.get(file);
  if (!t) {
    t = Handlebars.compile(readFileSync(path.join(TEMPLATE_DIR, file), "utf8"), { noEscape: true, strict: true });
    cache.set(file, t);
  }
  return t(view);
}

/** Placeholder for the kernel's name in rendered bodies: names are given after deduplication. */
export const KERNEL_NAME = "__KERNEL__";
