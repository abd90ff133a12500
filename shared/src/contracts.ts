/**
 * The cross-language contracts (wire frame, graph names, packed file, batch limit), read from
 * shared/contracts.json, which training/contracts.py reads too. Nothing here restates a value:
 * change the JSON and both sides follow (the golden files in test/golden/ are checked by both).
 */
import contracts from "../contracts.json" with { type: "json" };

export const CONTRACTS = contracts;

/** Largest batch: per edge request and per edge->cloud tail call (the cloud may set a lower one). */
export const MAX_BATCH: number = contracts.batch.maxBatch;
