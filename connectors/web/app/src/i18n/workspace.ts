import type { Dictionary } from "./index";

export const workspace: Dictionary = {};
