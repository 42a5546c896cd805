// The site's build: renders src/ into dist/ (what Vite or Astro do, in a few lines and no dependencies).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";

const page = readFileSync("src/index.html", "utf8");
const title = "Built by Node.js, served as static files";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", page.replaceAll("%TITLE%", title));
console.log("wrote dist/index.html");
