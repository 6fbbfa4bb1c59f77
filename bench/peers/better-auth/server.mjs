// better-auth as a performance peer for Latchkey's benchmark (bench/run starts it).
//
// Set up as better-auth's documentation recommends for production: a secret from the
// environment (BETTER_AUTH_SECRET), an explicit base URL, NODE_ENV=production, its SQLite
// adapter on better-sqlite3 with the schema migrated at start, e-mail and password
// sign-in, the JWT plugin (EdDSA keys made and stored by the plugin, private keys
// encrypted at rest, 15-minute tokens) and the bearer plugin (the session token in an
// Authorization header instead of a cookie). Served by node:http through better-auth's
// own toNodeHandler, without a framework: the fastest way to run it in one process.
//
// Differences from the defaults, each also made for Latchkey in the same run:
// - SQLite in WAL mode at synchronous=FULL (Latchkey's defaults; better-sqlite3 opens
//   files in rollback-journal mode, and better-sqlite3's own docs recommend WAL);
// - rate limits raised out of the way (Latchkey's are raised to 1000000/1s); the
//   limiter itself stays on, in memory, as in production.
//
// Routes: better-auth's under /api/auth (sign-up/email, sign-in/email, get-session,
// token, jwks, ...) and GET /api/resource, a resource route that verifies the JWT with
// jose against the served JWKS, as better-auth's JWT documentation shows a resource
// service doing it.
//
// PORT=3000 (default), DB_FILE=better-auth.db (default), BETTER_AUTH_SECRET (required).
// `node server.mjs --hash-time` prints the median time of one password verification
// (better-auth's scrypt) on this core, in ms, and exits.
import http from "node:http";
import Database from "better-sqlite3";
import { betterAuth } from "better-auth";
import { hashPassword, verifyPassword } from "better-auth/crypto";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { bearer, jwt } from "better-auth/plugins";
import { createRemoteJWKSet, jwtVerify } from "jose";

const PASSWORD = "benchmark-password-1";

if (process.argv.includes("--hash-time")) {
  const hash = await hashPassword(PASSWORD);
  const times = [];
  for (let i = 0; i < 7; i++) {
    const start = process.hrtime.bigint();
    if (!(await verifyPassword({ hash, password: PASSWORD }))) throw new Error("verify failed");
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  console.log(times[Math.floor(times.length / 2)].toFixed(2));
  process.exit(0);
}

const port = Number(process.env.PORT ?? 3000);
const baseURL = `http://127.0.0.1:${port}`;
if (!process.env.BETTER_AUTH_SECRET) {
  throw new Error("BETTER_AUTH_SECRET must be set (32 or more random characters)");
}

const db = new Database(process.env.DB_FILE ?? "better-auth.db");
db.pragma("journal_mode = WAL");
db.pragma("synchronous = FULL");

const unlimited = { window: 60, max: 1_000_000_000 };
export const auth = betterAuth({
  baseURL,
  secret: process.env.BETTER_AUTH_SECRET,
  database: db,
  emailAndPassword: { enabled: true },
  plugins: [jwt(), bearer()],
  rateLimit: {
    enabled: true,
    storage: "memory",
    ...unlimited,
    customRules: { "/sign-in/*": unlimited, "/sign-up/*": unlimited },
  },
  telemetry: { enabled: false },
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

// A resource service's check: the JWT against the issuer's JWKS (fetched once, then
// cached by jose), issuer and audience as the JWT plugin sets them (the base URL).
const jwks = createRemoteJWKSet(new URL(`${baseURL}/api/auth/jwks`));

async function resource(req, res) {
  const header = req.headers.authorization ?? "";
  const token = header.toLowerCase().startsWith("bearer ") ? header.slice(7).trim() : "";
  try {
    const { payload } = await jwtVerify(token, jwks, { issuer: baseURL, audience: baseURL });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ sub: payload.sub, email: payload.email }));
  } catch {
    res.writeHead(401, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: "invalid token" }));
  }
}

const authHandler = toNodeHandler(auth);
const server = http.createServer((req, res) => {
  if (req.url.startsWith("/api/auth/")) return authHandler(req, res);
  if (req.method === "GET" && req.url === "/api/resource") return resource(req, res);
  res.writeHead(404).end();
});
server.keepAliveTimeout = 65_000;
server.listen(port, "127.0.0.1");
process.on("SIGTERM", () => server.close(() => process.exit(0)));
