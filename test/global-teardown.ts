/** Stops the embedded database started by global-setup, if any. */
export default async function globalTeardown(): Promise<void> {
  const embedded = (globalThis as { __RSA_EMBEDDED_PG__?: { stop(): Promise<void> } }).__RSA_EMBEDDED_PG__;
  if (embedded) await embedded.stop();
}
