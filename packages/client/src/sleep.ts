/** A pause; unref'd unless `ref`, so a background wait never keeps the process alive. */
export function sleep(ms: number, ref = false): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (!ref) t.unref();
  });
}
