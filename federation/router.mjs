// A federation router over municipalities' gateways and other subgraphs: Apollo's gateway
// (@apollo/gateway) under Apollo Server, composing the subgraphs' `_service { sdl }`.
//
// Env: SUBGRAPHS  JSON list of {"name", "url"}
//      ROUTER_KEY the router's own API key (kind `router`): read `_service { sdl }` with it
//      PORT       where to listen (0: any free port); the address is printed as "ready <url>"
// A client's Authorization header is forwarded to every subgraph, so that each gateway
// applies its own scopes, row rules, limits and audit to the end caller; so is its address
// (X-Forwarded-For).
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from "@apollo/gateway";

const subgraphs = JSON.parse(process.env.SUBGRAPHS ?? "[]");
const routerKey = process.env.ROUTER_KEY;

const gateway = new ApolloGateway({
  supergraphSdl: new IntrospectAndCompose({ subgraphs }),
  buildService: ({ url }) =>
    new RemoteGraphQLDataSource({
      url,
      willSendRequest({ request, context }) {
        // A client's request carries its own credential, or none (the public); only the
        // router's own requests (composition: no client) carry the router's key.
        const forClient = context !== undefined && "authorization" in context;
        const authorization = forClient ? context.authorization : routerKey && `Bearer ${routerKey}`;
        if (authorization) request.http.headers.set("authorization", authorization);
        // The client's address, for the gateways' rate limits and logs: they believe it when
        // the router's address is in their GATEWAY_TRUSTED_PROXIES.
        if (context?.forwardedFor) request.http.headers.set("x-forwarded-for", context.forwardedFor);
      },
    }),
});

const server = new ApolloServer({ gateway, includeStacktraceInErrorResponses: false });
const { url } = await startStandaloneServer(server, {
  listen: { port: Number(process.env.PORT ?? 0), host: "127.0.0.1" },
  // Only a caller's own credential goes on; the router's key is for composition alone.
  context: async ({ req }) => ({
    authorization: req.headers.authorization ?? null,
    forwardedFor: [req.headers["x-forwarded-for"], req.socket.remoteAddress].filter(Boolean).join(", "),
  }),
});
console.log(`ready ${url}`);
