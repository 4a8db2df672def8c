/** Whether a program can be run: an executable path (with a "/"), or a name found on PATH. */
import { accessSync, constants } from "node:fs";
import path from "node:path";

const executable = (p: string): boolean => {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

export function onPath(bin: string): boolean {
  if (bin.includes("/")) return executable(bin);
  return (process.env.PATH ?? "").split(path.delimiter).some((d) => executable(path.join(d, bin)));
}
