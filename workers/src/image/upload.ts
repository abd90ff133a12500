/**
 * Reads an image upload from a web-standard Request: the raw body (image/png, image/jpeg) or
 * the multipart field `image`. The size cap is enforced while streaming (readLimited), so a
 * lying or missing Content-Length cannot make us buffer more than `maxBytes`.
 */
import { readLimited } from "@fogline/shared/body";
import { ApiError } from "@fogline/shared/errors";
import { sniffFormat, type ImageFormat } from "./image.js";

export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

const RAW_TYPES: Record<string, ImageFormat> = {
  "image/png": "png",
  "image/jpeg": "jpeg",
  "image/jpg": "jpeg",
  "image/pjpeg": "jpeg",
};

function mediaType(header: string | null): string {
  return (header ?? "").split(";")[0]!.trim().toLowerCase();
}

export async function readImageUpload(req: Request, maxBytes: number = DEFAULT_MAX_BODY_BYTES): Promise<Uint8Array> {
  const contentType = req.headers.get("content-type");
  const type = mediaType(contentType);
  const multipart = type === "multipart/form-data";
  if (!multipart && !(type in RAW_TYPES)) {
    throw new ApiError(
      "unsupported_media_type",
      type
        ? `content type "${type}" is not supported: send image/png or image/jpeg, or multipart/form-data with a field "image"`
        : "missing content type: send image/png or image/jpeg, or multipart/form-data with a field \"image\"",
    );
  }
  const declaredLength = Number(req.headers.get("content-length") ?? "");
  if (Number.isFinite(declaredLength) && declaredLength > maxBytes) {
    throw new ApiError("payload_too_large", `the body is ${declaredLength} bytes, more than the ${maxBytes} allowed`);
  }
  const body = await readLimited(req.body, maxBytes);
  if (body.length === 0) throw new ApiError("empty_body", "the request body is empty");

  let bytes = body;
  let declared: ImageFormat | undefined = RAW_TYPES[type];
  if (multipart) {
    let form: FormData;
    try {
      form = await new Response(body, { headers: { "content-type": contentType! } }).formData();
    } catch (e) {
      throw new ApiError("invalid_multipart", `could not parse the multipart body: ${(e as Error).message}`);
    }
    // typed loosely: lib.dom and workers-types disagree on FormDataEntryValue
    const field = form.get("image") as Blob | string | null;
    if (field === null || typeof field === "string") {
      throw new ApiError("missing_image_field", 'multipart body has no file field "image"');
    }
    bytes = new Uint8Array(await field.arrayBuffer());
    // a part typed application/octet-stream (curl's default for some files) is sniffed instead
    declared = RAW_TYPES[mediaType(field.type)];
    if (bytes.length === 0) throw new ApiError("empty_body", 'the "image" field is empty');
  }
  const actual = sniffFormat(bytes);
  if (!actual) throw new ApiError("not_an_image", "the upload is neither a PNG nor a JPEG image");
  if (declared && declared !== actual) {
    throw new ApiError("content_type_mismatch", `declared ${declared.toUpperCase()} but the bytes are a ${actual.toUpperCase()}`);
  }
  return bytes;
}
