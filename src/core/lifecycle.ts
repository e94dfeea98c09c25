/** A component with a lifetime. Started in composition order, stopped in reverse (see node.ts). */
export interface Startable {
  start(): Promise<void> | void
  stop(): Promise<void> | void
}

/**
 * Starts components one after another; if one fails, stops those already started (in reverse) and rethrows.
 * Ordered rather than parallel so that no request reaches a half-built node.
 */
export async function startAll (components: Startable[]): Promise<void> {
  const started: Startable[] = []
  for (const c of components) {
    try {
      await c.start()
      started.push(c)
    } catch (err) {
      await stopAll(started)
      throw err
    }
  }
}

/** Stops components in reverse order; keeps going past failures and returns them. */
export async function stopAll (components: Startable[]): Promise<unknown[]> {
  const errors: unknown[] = []
  for (const c of [...components].reverse()) {
    try {
      await c.stop()
    } catch (err) {
      errors.push(err)
    }
  }
  return errors
}
