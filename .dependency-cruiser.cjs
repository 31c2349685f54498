// Layering checked in CI (issue 27): `npx depcruise src` must report no violation.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "no-circular",
      severity: "error",
      comment: "import circles make module load order fragile; type-only imports are erased before anything runs, so a circle through one is not counted",
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ["type-only"] } },
    },
    {
      name: "protocol-is-pure",
      severity: "error",
      comment: "protocol/ is the pure rule layer: it may import only lib/ (and itself)",
      from: { path: "^src/protocol/" },
      to: { path: "^src/", pathNot: "^src/(protocol|lib)/" },
    },
    {
      name: "store-below-the-rest",
      severity: "error",
      comment: "store/ speaks SQL; observability, live reads, HTTP and auth attach from above (server.ts)",
      from: { path: "^src/store/" },
      to: { path: "^src/(observability|live|http|auth)/" },
    },
    {
      name: "driver-at-the-bottom",
      severity: "error",
      comment: "store/driver/ is the database adapter; the rooms above it (streams, subscriptions, admin) use it, never the reverse",
      from: { path: "^src/store/driver/" },
      to: { path: "^src/store/", pathNot: "^src/store/driver/" },
    },
    {
      name: "admin-room-on-top",
      severity: "error",
      comment: "store/admin/ reads what the streams and subscriptions rooms keep; they never import it",
      from: { path: "^src/store/(streams|subscriptions)/" },
      to: { path: "^src/store/admin/" },
    },
    {
      name: "subscriptions-through-facade",
      severity: "error",
      comment: "subscriptions/ reaches the database only through the subscription store's facade (and the stream store's, for wake events)",
      from: { path: "^src/subscriptions/" },
      to: { path: "^src/store/", pathNot: "^src/store/(index|subscriptions/index)\\.ts$" },
    },
    {
      name: "config-without-auth",
      severity: "error",
      comment: "the configuration schema is composed at the top, not inside config.ts",
      from: { path: "^src/config\\.ts$" },
      to: { path: "^src/auth/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
  },
};
