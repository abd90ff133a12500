import { describe, expect, it } from "vitest";
import { verify } from "@fogline/shared/hmac";
import { TAIL_CONTENT_TYPE, TAIL_HEADERS } from "@fogline/shared/schemas/tail";
import { signedTailRequest, tailUrl } from "../../workers/src/cloud/tail-request.js";

const SECRET = "d36bb0c0a77604d40fb1c10fe7466066baccecf278bedf2be7bba236251b020a";
const FINGERPRINT = "ab".repeat(32);
const body = new Uint8Array([1, 2, 3, 4, 5]);

/** The cloud's view of a call: the signature headers as cloud/src/routes/tail.ts reads them. */
const headersOf = (h: Record<string, string>) => ({
  fingerprint: h[TAIL_HEADERS.fingerprint],
  timestamp: h[TAIL_HEADERS.timestamp],
  nonce: h[TAIL_HEADERS.nonce],
  signature: h[TAIL_HEADERS.signature],
});

describe("signedTailRequest", () => {
  it("builds a POST of the activation whose signature the cloud's check accepts", async () => {
    const req = await signedTailRequest({ secret: SECRET, fingerprint: FINGERPRINT, body });
    expect(req.method).toBe("POST");
    expect(req.body).toBe(body);
    expect(req.headers["content-type"]).toBe(TAIL_CONTENT_TYPE);
    expect(req.headers[TAIL_HEADERS.requestId]).toBeUndefined();
    expect(await verify(SECRET, headersOf(req.headers), body)).toEqual({ ok: true });
  });

  it("is refused under another secret or with other bytes", async () => {
    const req = await signedTailRequest({ secret: SECRET, fingerprint: FINGERPRINT, body });
    expect(await verify("0".repeat(64), headersOf(req.headers), body)).toEqual({ ok: false, reason: "invalid" });
    expect(await verify(SECRET, headersOf(req.headers), new Uint8Array([1, 2, 3, 4, 6]))).toEqual({ ok: false, reason: "invalid" });
  });

  it("takes a fresh nonce per call, or the given timestamp, nonce and request id", async () => {
    const a = await signedTailRequest({ secret: SECRET, fingerprint: FINGERPRINT, body });
    const b = await signedTailRequest({ secret: SECRET, fingerprint: FINGERPRINT, body });
    expect(a.headers[TAIL_HEADERS.nonce]).not.toBe(b.headers[TAIL_HEADERS.nonce]);
    expect(a.headers[TAIL_HEADERS.signature]).not.toBe(b.headers[TAIL_HEADERS.signature]);
    const nonce = "0123456789abcdef0123456789abcdef";
    const c = await signedTailRequest({ secret: SECRET, fingerprint: FINGERPRINT, body, timestampS: 1_700_000_000, nonce, requestId: "edge-req-1" });
    expect(c.headers[TAIL_HEADERS.timestamp]).toBe("1700000000");
    expect(c.headers[TAIL_HEADERS.nonce]).toBe(nonce);
    expect(c.headers[TAIL_HEADERS.requestId]).toBe("edge-req-1");
    expect(await verify(SECRET, headersOf(c.headers), body, 1_700_000_000)).toEqual({ ok: true });
  });
});

describe("tailUrl", () => {
  it("joins the cloud's base URL and the model's route, whatever trailing slashes the base has", () => {
    expect(tailUrl("http://127.0.0.1:8788", "cifar10")).toBe("http://127.0.0.1:8788/v1/tail/cifar10");
    expect(tailUrl("https://cloud.example.com/fogline//", "cifar10")).toBe("https://cloud.example.com/fogline/v1/tail/cifar10");
    expect(tailUrl("", "a b")).toBe("/v1/tail/a%20b");
  });
});
