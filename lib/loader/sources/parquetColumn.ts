/**
 * One flat Parquet column chunk read straight into a typed array, for the common case: a top-level column with
 * no null in the chunk, pages PLAIN or dictionary-encoded (v1 or v2). hyparquet 1.20 passes every nullable
 * column's DataPageV2 pages through its general Dremel list assembler, pushing value by value into an array of
 * boxed numbers; in the load benchmark's file (nullable columns, v2 pages, as hyparquet-writer and others write
 * them) that was 40% of a row group's decode, and the first row group's decode is time the server waits before
 * the first row arrives. The pages are still decoded by hyparquet's own functions (page headers,
 * decompression, PLAIN values, the RLE/bit-packed hybrid, type conversion), so values and their types are
 * hyparquet's; only the assembly of a flat column without nulls is done here.
 *
 * Anything else (a null, a nested or repeated column, another encoding or page type, a damaged page) returns
 * `undefined`, and the caller reads the chunk with hyparquet's parquetReadColumn, which also reports damage.
 * hyparquet's modules are imported by path, so package.json pins its exact version; the tests read every chunk
 * of several writers' files both ways, so an upgrade that changes either side fails them.
 */
import type { AsyncBuffer, ColumnChunk, Compressors, DecodedArray, ParquetParsers, SchemaElement } from "hyparquet" with { "resolution-mode": "import" };

/** What the chunk's values are turned into, as hyparquet's readers are given it. */
export interface FlatColumnDecoder {
  /** Over hyparquet's defaults, as its readers take them. */
  parsers: Partial<ParquetParsers>;
  compressors?: Compressors;
}

type Internals = Awaited<ReturnType<typeof loadInternals>>;
let internals: Promise<Internals> | undefined;

async function loadInternals() {
  const [thrift, datapage, plain, encoding, convert, constants] = await Promise.all([
    import("hyparquet/src/thrift.js"),
    import("hyparquet/src/datapage.js"),
    import("hyparquet/src/plain.js"),
    import("hyparquet/src/encoding.js"),
    import("hyparquet/src/convert.js"),
    import("hyparquet/src/constants.js"),
  ]);
  return {
    readHeader: thrift.deserializeTCompactProtocol,
    decompressPage: datapage.decompressPage,
    readPlain: plain.readPlain,
    readRleBitPackedHybrid: encoding.readRleBitPackedHybrid,
    convert: convert.convert,
    defaultParsers: convert.DEFAULT_PARSERS,
    encodingName: constants.Encoding,
    pageTypeName: constants.PageType,
  };
}

/** Thrown inside the reader for what it leaves to hyparquet; never escapes readFlatColumn. */
class NotFlat extends Error {}

interface Reader {
  view: DataView;
  offset: number;
}

const readerOf = (bytes: Uint8Array): Reader => ({ view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset: 0 });

type ColumnMeta = NonNullable<ColumnChunk["meta_data"]>;

/** A data page's values, uncompressed: how many, how encoded, and where they start (`length` bytes). */
interface PageValues {
  count: number;
  encoding: string;
  reader: Reader;
  length: number;
}

/**
 * The chunk's `rows` values, or `undefined` when the chunk is not one this reader takes (see the module
 * comment). `element` is the column's schema element, a direct child of the schema root.
 */
export async function readFlatColumn(
  file: AsyncBuffer,
  chunk: ColumnChunk,
  element: SchemaElement,
  rows: number,
  decoder: FlatColumnDecoder,
): Promise<DecodedArray | undefined> {
  const meta = chunk.meta_data;
  if (!meta || meta.path_in_schema.length !== 1 || meta.path_in_schema[0] !== element.name) return undefined;
  if (element.repetition_type === "REPEATED" || element.num_children || meta.type === "BOOLEAN") return undefined;
  internals ??= loadInternals();
  const h = await internals;
  // hyparquet's getColumnRange: a dictionary page, when there is one, comes first.
  const start = Number(meta.dictionary_page_offset || meta.data_page_offset);
  const bytes = new Uint8Array(await file.slice(start, start + Number(meta.total_compressed_size)));
  try {
    return decodePages(h, bytes, meta.type, meta.codec, element, rows, decoder);
  } catch {
    // NotFlat, or a page this reader cannot make sense of: hyparquet reads it, or says how it is damaged.
    return undefined;
  }
}

function decodePages(
  h: Internals,
  bytes: Uint8Array,
  type: ColumnMeta["type"],
  codec: ColumnMeta["codec"],
  element: SchemaElement,
  rows: number,
  decoder: FlatColumnDecoder,
): DecodedArray {
  const columnDecoder = { element, parsers: { ...h.defaultParsers, ...decoder.parsers } };
  const optional = element.repetition_type === "OPTIONAL";
  const reader = readerOf(bytes);
  let dictionary: DecodedArray | undefined;
  let out: DecodedArray | undefined;
  let at = 0;
  while (at < rows) {
    if (reader.offset >= bytes.byteLength) throw new NotFlat("the chunk ends before its rows");
    const header = h.readHeader(reader);
    const pageType = h.pageTypeName[header.field_1 as number];
    const uncompressed = header.field_2 as number;
    const page = bytes.subarray(reader.offset, reader.offset + (header.field_3 as number));
    reader.offset += header.field_3 as number;
    if (pageType === "DICTIONARY_PAGE") {
      const raw = h.decompressPage(page, uncompressed, codec, decoder.compressors);
      dictionary = h.convert(h.readPlain(readerOf(raw), type, header.field_7.field_1 as number, element.type_length), columnDecoder);
      continue;
    }
    let values: PageValues;
    if (pageType === "DATA_PAGE") {
      const raw = h.decompressPage(page, uncompressed, codec, decoder.compressors);
      const r = readerOf(raw);
      const count = header.field_5.field_1 as number;
      // A v1 page starts with the definition levels of an optional column: every one must say "present".
      if (optional) {
        if (h.encodingName[header.field_5.field_3 as number] !== "RLE") throw new NotFlat("levels not RLE-encoded");
        const levels = new Uint8Array(count);
        h.readRleBitPackedHybrid(r, 1, levels);
        if (levels.some((d) => d !== 1)) throw new NotFlat("a null");
      }
      values = { count, encoding: h.encodingName[header.field_5.field_2 as number] ?? "", reader: r, length: raw.byteLength - r.offset };
    } else if (pageType === "DATA_PAGE_V2") {
      const v2 = header.field_8;
      if ((v2.field_2 as number) !== 0) throw new NotFlat("a null");
      // v2 keeps the levels uncompressed ahead of the values; without nulls they say nothing.
      const levelBytes = (v2.field_5 as number) + (v2.field_6 as number);
      const compressed = v2.field_7 === undefined ? true : Boolean(v2.field_7);
      const body = page.subarray(levelBytes);
      const raw = compressed ? h.decompressPage(body, uncompressed - levelBytes, codec, decoder.compressors) : body;
      values = { count: v2.field_1 as number, encoding: h.encodingName[v2.field_4 as number] ?? "", reader: readerOf(raw), length: raw.byteLength };
    } else {
      throw new NotFlat(`a ${pageType} page`);
    }
    const decoded = decodeValues(h, values, type, element, dictionary, columnDecoder);
    out = place(out, decoded, at, rows);
    at += values.count;
  }
  if (at !== rows || !out) throw new NotFlat("the pages hold more values than the row group's rows");
  return out;
}

/** A data page's values, dictionary indices looked up. */
function decodeValues(
  h: Internals,
  page: PageValues,
  type: ColumnMeta["type"],
  element: SchemaElement,
  dictionary: DecodedArray | undefined,
  columnDecoder: Parameters<Internals["convert"]>[1],
): DecodedArray {
  if (page.encoding === "PLAIN") return h.convert(h.readPlain(page.reader, type, page.count, element.type_length), columnDecoder);
  if ((page.encoding !== "RLE_DICTIONARY" && page.encoding !== "PLAIN_DICTIONARY") || !dictionary) throw new NotFlat(`${page.encoding} values`);
  const width = page.reader.view.getUint8(page.reader.offset++);
  const indices = new Int32Array(page.count);
  if (width) h.readRleBitPackedHybrid(page.reader, width, indices, page.length - 1);
  const values: DecodedArray = Array.isArray(dictionary) ? new Array(page.count) : new (dictionary.constructor as new (n: number) => DecodedArray)(page.count);
  for (let i = 0; i < page.count; i++) {
    const index = indices[i] as number;
    if (index >= dictionary.length) throw new NotFlat("a dictionary index past the dictionary");
    values[i] = dictionary[index] as never;
  }
  return values;
}

/** `values` written into the chunk's array at `at`, which is made (or widened to a plain array) as needed. */
function place(out: DecodedArray | undefined, values: DecodedArray, at: number, rows: number): DecodedArray {
  if (at === 0 && values.length === rows) return values;
  let target = out ?? (Array.isArray(values) ? new Array(rows) : new (values.constructor as new (n: number) => DecodedArray)(rows));
  if (!Array.isArray(target) && target.constructor !== values.constructor) target = Array.from(target as ArrayLike<unknown>) as DecodedArray;
  if (at + values.length > rows) throw new NotFlat("the pages hold more values than the row group's rows");
  if (Array.isArray(target)) {
    for (let i = 0; i < values.length; i++) target[at + i] = values[i];
  } else {
    (target as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(values as ArrayLike<unknown>, at);
  }
  return target;
}
