// Waiting on events instead of polling: whatever a test watches calls notify() when it
// changes (a probe got bytes, a change was applied), and until() re-checks its condition
// exactly then, with a deadline so a missing event fails the test instead of hanging it.
export class Signal {
  private readonly listeners = new Set<() => void>();

  notify(): void {
    for (const l of [...this.listeners]) l();
  }

  until(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!cond()) return;
        done();
        resolve();
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }
}
