// The application: every request is dispatched to the route targetOf() matched in the one
// route table (routes.ts); handler errors map through errorResponse. Bodies are never
// parsed ahead of the handler; handlers read raw bytes with a size cap.
import type { AppContext } from "./context.ts";
import { errorResponse } from "./respond.ts";
import { targetOf } from "./target.ts";

export interface App {
  fetch(request: Request): Promise<Response>;
}

export function buildApp(ctx: AppContext, health: NonNullable<AppContext["health"]>): App {
  const served: AppContext = { ...ctx, health };
  return {
    async fetch(request) {
      try {
        const t = targetOf(request);
        return await t.route.handle(served, request, t);
      } catch (err) {
        return errorResponse(err, request.method);
      }
    },
  };
}
