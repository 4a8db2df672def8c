#!/usr/bin/env node
// Strata runs from its TypeScript sources: tsx's loader compiles them (and the user's arch files)
// on import, so there is no build step between editing and running.
import { register as registerHooks } from "node:module";
import { register } from "tsx/esm/api";

// map stack frames of user files back to their TypeScript lines (used for error locations)
process.setSourceMapsEnabled(true);
register();
registerHooks(new URL("../compiler/cli/arch-hooks.mjs", import.meta.url).href);
await import("../compiler/cli/main.ts");
