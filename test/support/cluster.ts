// Several instances on one Postgres schema, optionally behind nginx.
import { startNginx, type LoadBalancer } from "./nginx.ts";
import { type Runtime, type SpawnedServer, spawnServer } from "./spawn-server.ts";

export interface Cluster {
  instances: SpawnedServer[];
  lb?: LoadBalancer;
  stop(): Promise<void>;
}

export async function startCluster(opts: {
  databaseUrl: string;
  schema: string;
  count: number;
  runtime?: Runtime;
  loadBalancer?: boolean;
  env?: Record<string, string>;
  /** SpawnOptions.warmUp for every instance. */
  warmUp?: boolean;
  quiet?: boolean;
}): Promise<Cluster> {
  // Start together: concurrent migrations must be safe (advisory lock).
  const instances = await Promise.all(
    Array.from({ length: opts.count }, () =>
      spawnServer({ runtime: opts.runtime, databaseUrl: opts.databaseUrl, schema: opts.schema, env: opts.env, quiet: opts.quiet ?? true, warmUp: opts.warmUp }),
    ),
  );
  const lb = opts.loadBalancer ? await startNginx(instances.map((i) => i.port)) : undefined;
  return {
    instances,
    lb,
    async stop() {
      await lb?.stop();
      await Promise.all(instances.map((i) => i.stop()));
    },
  };
}
