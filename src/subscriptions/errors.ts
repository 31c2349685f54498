// Shorthands for the subscription errors raised most often.
import { SubscriptionError } from "../protocol/errors.ts";

export const BadRequestCode = (message: string) => new SubscriptionError("INVALID_REQUEST", message);
export const NotFound = (id: string) => new SubscriptionError("SUBSCRIPTION_NOT_FOUND", `subscription ${JSON.stringify(id)} not found`);
