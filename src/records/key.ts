import { z } from '../zod.js';

/** Body of a `key.rotate` entry. The OLD key signs it, which is what makes the new key trustworthy. */
export const KeyRotateBodySchema = z
  .object({
    newKeyId: z.string(),
    /** SPKI PEM of the new public key; verify trusts this copy because the old key signed it. */
    publicKey: z.string(),
    previousKeyId: z.string(),
  })
  .readonly();
export type KeyRotateBody = z.infer<typeof KeyRotateBodySchema>;

/** Body of a `key.add` entry: a second signer. A key already trusted signs it; both sign from the next entry on. */
export const KeyAddBodySchema = z
  .object({
    newKeyId: z.string(),
    /** SPKI PEM of the added public key. */
    publicKey: z.string(),
  })
  .readonly();
export type KeyAddBody = z.infer<typeof KeyAddBodySchema>;
