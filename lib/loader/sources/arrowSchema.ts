/**
 * The schema-level metadata inside a Parquet file's `ARROW:schema` key-value entry: the Arrow schema its
 * writer serialized (base64 of one Arrow IPC message). arrow-rs (NautilusTrader's Rust catalog) keeps the
 * Arrow schema's own metadata only there, not as plain Parquet keys as pyarrow also does.
 *
 * Read with the `flatbuffers` runtime and the three tables we need from Arrow's format/Message.fbs and
 * format/Schema.fbs (Message.header -> Schema.custom_metadata -> KeyValue). apache-arrow would decode the
 * whole message, but it is a 7.7 MB package that takes ~65 ms to import for three strings; flatbuffers is
 * 0.6 MB and ~5 ms. The tests check this reader against messages written by apache-arrow and arrow-rs.
 */
import { ByteBuffer } from "flatbuffers";

/** Message.header_type for a Schema (MessageHeader union in Message.fbs). */
const MESSAGE_HEADER_SCHEMA = 1;
/** 0xFFFFFFFF: the IPC continuation marker that precedes the length since Arrow 0.15. */
const CONTINUATION = -1;

// vtable offsets: 4 + 2 * (field id in the .fbs table).
const MESSAGE_HEADER_TYPE = 6; // Message.headerType (id 1)
const MESSAGE_HEADER = 8; // Message.header (id 2)
const SCHEMA_CUSTOM_METADATA = 8; // Schema.custom_metadata (id 2)
const KEY_VALUE_KEY = 4; // KeyValue.key (id 0)
const KEY_VALUE_VALUE = 6; // KeyValue.value (id 1)

/**
 * The schema's custom metadata from the base64 value of `ARROW:schema`. Accepts the current framing
 * (continuation marker, int32 length, Message) and the legacy one (int32 length, Message). Throws when the
 * value is not a serialized Arrow schema.
 */
export function arrowSchemaMetadata(base64: string): Map<string, string> {
  const bytes = new Uint8Array(Buffer.from(base64, "base64"));
  const bad = (why: string) => new Error(`ARROW:schema is not a serialized Arrow schema (${why}).`);
  if (bytes.length < 8) throw bad(`${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const start = view.getInt32(0, true) === CONTINUATION ? 8 : 4;
  const length = view.getInt32(start - 4, true);
  if (length <= 0 || start + length > bytes.length) throw bad(`message length ${length} in ${bytes.length} bytes`);
  const bb = new ByteBuffer(bytes.subarray(start, start + length));
  try {
    const message = bb.readInt32(0);
    if (message <= 0 || message >= length) throw bad(`root table at ${message} in ${length} bytes`);
    const typeAt = bb.__offset(message, MESSAGE_HEADER_TYPE);
    const headerAt = bb.__offset(message, MESSAGE_HEADER);
    if (!typeAt || bb.readUint8(message + typeAt) !== MESSAGE_HEADER_SCHEMA || !headerAt) throw bad("its message holds no schema");
    const schema = bb.__indirect(message + headerAt);
    const out = new Map<string, string>();
    const metaAt = bb.__offset(schema, SCHEMA_CUSTOM_METADATA);
    if (!metaAt) return out;
    const vector = bb.__vector(schema + metaAt);
    const count = bb.__vector_len(schema + metaAt);
    // A damaged length must not send the loop through billions of entries.
    if (vector + count * 4 > length) throw bad(`${count} metadata entries in ${length} bytes`);
    for (let i = 0; i < count; i++) {
      const kv = bb.__indirect(vector + i * 4);
      const keyAt = bb.__offset(kv, KEY_VALUE_KEY);
      const valueAt = bb.__offset(kv, KEY_VALUE_VALUE);
      if (keyAt) out.set(bb.__string(kv + keyAt) as string, valueAt ? (bb.__string(kv + valueAt) as string) : "");
    }
    return out;
  } catch (err) {
    // flatbuffers reads past the end as RangeErrors (typed array views) or garbage caught above.
    if (err instanceof RangeError) throw bad(err.message);
    throw err;
  }
}
