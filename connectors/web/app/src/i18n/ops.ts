import type { Dictionary } from "./index";

export const ops: Dictionary = {};
