import type { Dictionary } from "./index";

export const assistant: Dictionary = {};
