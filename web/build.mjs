// Bundles the console into dist/: index.html, console.js, console.css.
//
//   npm run build     # buf generate, tsc --noEmit, then this script
//
// The output is deterministic (no timestamps, no content hashes, no source
// maps with absolute paths), so the committed dist/ can be compared with a
// fresh build.
import { build } from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");

await rm(dist, { recursive: true, force: true });
await mkdir(dist, { recursive: true });
await build({
  absWorkingDir: here,
  entryPoints: ["src/main.ts"],
  outfile: "dist/console.js",
  bundle: true,
  format: "esm",
  target: "es2022",
  platform: "browser",
  minify: true,
  legalComments: "none",
  charset: "utf8",
  logLevel: "warning",
});
await build({
  absWorkingDir: here,
  entryPoints: ["src/console.css"],
  outfile: "dist/console.css",
  bundle: true,
  minify: true,
  charset: "utf8",
  logLevel: "warning",
});
await copyFile(join(here, "src/index.html"), join(dist, "index.html"));
