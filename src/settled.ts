/**
 * Both results, once both have settled. When either failed, the first one's error wins, so
 * steps started side by side report their failures in the order they would have run in; and
 * nothing is left running behind the error (a query still holding its connection, say).
 */
export async function bothSettled<A, B>(a: Promise<A>, b: Promise<B>): Promise<[A, B]> {
  const [x, y] = await Promise.allSettled([a, b]);
  if (x.status === 'rejected') throw x.reason;
  if (y.status === 'rejected') throw y.reason;
  return [x.value, y.value];
}
