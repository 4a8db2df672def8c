#!/usr/bin/env node
// Strata runs from its TypeScript sources: tsx's loader compiles them (and the user's arch files)
// on import, so there is no build step between editing and running.
import { register } from "tsx/esm/api";

register();
await import("../compiler/cli/main.ts");
