-- Wake pacing (SUBSCRIPTION_WAKE_INTERVAL_MS): a subscription is woken at most once per
-- interval on average, with a burst of two, so one whose streams are written all the time
-- is woken a bounded number of times a second (each wake covering more), while one written
-- now and then is woken at once. next_wake_at is when the next wake may be due without
-- using the burst (a "theoretical arrival time" in the generic cell rate algorithm). Not
-- indexed, so setting it does not stop an update from being HOT.
ALTER TABLE ds_subscriptions ADD COLUMN next_wake_at timestamptz;
