// Composes subgraph SDLs into one supergraph with Apollo's composition library, as a
// router would; exits non-zero, printing every error, when they do not compose.
// Usage: node compose.mjs name=path.graphql ... [--print]
import { readFileSync } from "node:fs";
import { composeServices } from "@apollo/composition";
import { parse } from "graphql";

const args = process.argv.slice(2);
const print = args.includes("--print");
const services = args
  .filter((a) => a !== "--print")
  .map((arg) => {
    const [name, path] = arg.split("=");
    return { name, url: `http://${name}.invalid/graphql`, typeDefs: parse(readFileSync(path, "utf8")) };
  });
if (services.length < 2) {
  console.error("usage: node compose.mjs name=path.graphql name=path.graphql ... [--print]");
  process.exit(2);
}
const result = composeServices(services);
if (result.errors) {
  for (const error of result.errors) console.error(`${error.extensions?.code ?? "ERROR"}: ${error.message}`);
  process.exit(1);
}
if (print) console.log(result.supergraphSdl);
else console.error(`composed ${services.map((s) => s.name).join(", ")}: ${result.hints.length} hints`);
