import type { Dictionary } from "./index";

export const files: Dictionary = {};
