// Constructors for the SMS v3 API's scalar types, shared by every schema in
// this folder (source.ts included, which common.ts itself builds on, so they
// live in this leaf module that imports nothing of ours).
// Long is int64 in the API; JSON numbers beyond 2^53 cannot be represented
// in JavaScript, so a Long here is a safe non-negative integer.

import { z } from 'zod';

export const INT32_MAX = 2_147_483_647;

/** String with the documented 0..max length. */
export const str = (max = 255) => z.string().max(max);
/** API "Long": a non-negative integer (safe-integer range). */
export const long = () => z.int().min(0);
/** API "Integer": a non-negative int32 (or a smaller documented maximum). */
export const int = (max = INT32_MAX) => z.int().min(0).max(max);
/** API "Double" with a documented range. */
export const double = (max = 10_000) => z.number().min(0).max(max);
/** API "Array … Array length: 0 to N". */
export const list = <T extends z.ZodType>(item: T, max = 65_535) => z.array(item).max(max);
