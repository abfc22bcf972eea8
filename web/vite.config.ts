import { defineConfig } from "vite";

// The build goes into the Python package, which serves it (src/mailroom/frontends/web).
export default defineConfig({
  base: "/",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: "../src/mailroom/frontends/web/static",
    emptyOutDir: true,
    assetsDir: "assets",
    target: "es2022",
    modulePreload: { polyfill: false },
    // Everything is a file of this origin: no data: URLs for the strict CSP to weigh.
    assetsInlineLimit: 0,
    sourcemap: false,
    reportCompressedSize: true,
  },
  test: { include: ["src/**/*.test.ts"] },
} as any);
