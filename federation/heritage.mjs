// A small second subgraph for the end-to-end test and for trying a router by hand: the
// heritage registry, which extends Parcel (see heritage.graphql).
// Env: LISTINGS JSON object {"<municipality>|<renewalCode>": {"registrationNumber", "title"}}
//      PORT     where to listen (0: any free port); the address is printed as "ready <url>"
import { readFileSync } from "node:fs";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSubgraphSchema } from "@apollo/subgraph";
import { parse } from "graphql";

const listings = JSON.parse(process.env.LISTINGS ?? "{}");
const typeDefs = parse(readFileSync(new URL("./heritage.graphql", import.meta.url), "utf8"));
const resolvers = {
  Parcel: {
    __resolveReference: (parcel) => ({
      ...parcel,
      heritage: listings[`${parcel.municipality}|${parcel.renewalCode}`] ?? null,
    }),
  },
};
const server = new ApolloServer({ schema: buildSubgraphSchema([{ typeDefs, resolvers }]) });
const { url } = await startStandaloneServer(server, {
  listen: { port: Number(process.env.PORT ?? 0), host: "127.0.0.1" },
});
console.log(`ready ${url}`);
