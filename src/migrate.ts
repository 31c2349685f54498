// `npm run migrate`: apply pending migrations and exit (the server also does this at start).
import process from "node:process";
import { loadConfig } from "./settings.ts";
import { configureLogging, log } from "./observability/log.ts";
import { openDb } from "./store/driver/db.ts";
import { migrate } from "./store/migrate.ts";

const config = loadConfig(process.env);
configureLogging(config);
const db = await openDb({
  databaseUrl: config.DATABASE_URL,
  prepare: config.DATABASE_PREPARE === "true",
  dataDir: config.DATA_DIR,
  schema: config.DATABASE_SCHEMA,
  poolSize: 2,
});
try {
  const ran = await migrate(db);
  log.info({ applied: ran }, ran.length ? "applied migrations" : "database is up to date");
} finally {
  await db.close();
}
