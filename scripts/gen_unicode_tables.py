#!/usr/bin/env python3
"""Generate src/model/unicode_tables.inc: the Unicode / HTML tables of the CLIP text cleaning.

The tables replicate what the reference tokenizer (openai/CLIP simple_tokenizer.py) gets from
Python's str methods, the `html` module and the third-party `regex` module:

  kLetterRanges / kNumberRanges: maximal ranges of code points c (0 <= c <= 0x10FFFF) with
    regex.match(r'\\p{L}', chr(c)) / regex.match(r'\\p{N}', chr(c)).
  kLowerRuns: every c with len(chr(c).lower()) == 1 and chr(c).lower() != chr(c), packed into
    runs of equal delta and stride 1 or 2 (the only multi-character mapping, U+0130, is handled
    in code). Packing is greedy in code-point order: a run starts at the next unpacked c; if the
    following mapped code point has the same delta and lies 1 or 2 above, that distance is the
    stride and the run grows while the next one continues it; otherwise the run is {c, c, 1, d}.
  kNamedEntities: the entries of html.entities.html5 whose name (without ';') is an HTML 4 name
    (html.entities.name2codepoint), 'apos', or one of the legacy upper-case names AMP COPY GT LT
    QUOT REG; sorted by name (byte order). This includes every entry html5 accepts without ';'.
  kInvalidCharrefs / kInvalidCodepoints: html._invalid_charrefs (sorted by code point) /
    html._invalid_codepoints (as maximal ranges).
  kCasedRanges / kCaseIgnorableRanges: maximal ranges of regex \\p{Cased} / \\p{Case_Ignorable}
    (for the final-sigma rule of str.lower()).

The committed unicode_tables.inc was produced by CPython 3.11.7 (unicodedata 14.0.0) with the
`regex` module 2026.5.9 (whose property data has the Unicode 17.0 additions, e.g. U+323B0).
str.lower() and the html tables follow the interpreter, while the \\p{...} tables follow the
Unicode data built into `regex`, so another interpreter or regex release can give other tables
(Debian 12's python3-regex 2022.10.31, Unicode 15.0, changes kLetterRanges, kNumberRanges,
kCasedRanges and kCaseIgnorableRanges). The tokenizer must not change behaviour silently:
regenerate only deliberately and rerun the tokenizer tests. The file's header records the
versions of the run, so --check under another interpreter reports that line too.

The layout is that of clang-format 14 (.clang-format of the repository: Google, ColumnLimit 100)
for these braced lists, so the file is stable under clang-format; it is also fenced with
"clang-format off/on" so that another clang-format version cannot make --check fail.

usage: gen_unicode_tables.py [--out PATH | --check PATH]
  (no option)   print the generated file to stdout
  --out PATH    write it to PATH
  --check PATH  exit 0 if PATH equals the generated text, else print a unified diff and exit 1
"""
import argparse
import difflib
import html
import html.entities
import sys
import unicodedata

try:
    import regex
except ImportError:  # pragma: no cover - depends on the machine
    sys.exit("gen_unicode_tables.py: needs the `regex` module (pip install regex, or Debian's "
             "python3-regex)")

MAX_CP = 0x10FFFF
COLUMN_LIMIT = 100
INDENT = 4  # continuation indent of the items inside "constexpr T kName[] = {"


def ranges_of(pred):
    """Maximal [lo, hi] ranges of code points for which pred(c) holds, in order."""
    out = []
    start = None
    for c in range(MAX_CP + 2):
        inside = c <= MAX_CP and pred(c)
        if inside and start is None:
            start = c
        elif not inside and start is not None:
            out.append((start, c - 1))
            start = None
    return out


def ranges_of_set(values):
    out = []
    for v in sorted(values):
        if out and out[-1][1] + 1 == v:
            out[-1] = (out[-1][0], v)
        else:
            out.append((v, v))
    return out


def regex_ranges(prop):
    pattern = regex.compile(r'\p{%s}' % prop)
    return ranges_of(lambda c: pattern.match(chr(c)) is not None)


def lower_runs():
    mapped = []  # (c, delta)
    for c in range(MAX_CP + 1):
        low = chr(c).lower()
        if len(low) == 1 and low != chr(c):
            mapped.append((c, ord(low) - c))
    runs = []
    i = 0
    while i < len(mapped):
        lo, delta = mapped[i]
        hi, stride = lo, 1
        if i + 1 < len(mapped) and mapped[i + 1][1] == delta and mapped[i + 1][0] - lo in (1, 2):
            stride = mapped[i + 1][0] - lo
            while i + 1 < len(mapped) and mapped[i + 1] == (hi + stride, delta):
                hi += stride
                i += 1
        runs.append((lo, hi, stride, delta))
        i += 1
    return runs


def named_entities():
    keep = set(html.entities.name2codepoint) | {'apos', 'AMP', 'COPY', 'GT', 'LT', 'QUOT', 'REG'}
    out = []
    for name, value in html.entities.html5.items():
        if name.rstrip(';') in keep:
            if len(value) != 1:
                sys.exit('gen_unicode_tables.py: entity %r is not one code point' % name)
            out.append((name, ord(value)))
    out.sort(key=lambda e: e[0].encode('ascii'))
    return out


def invalid_charrefs():
    return sorted((k, ord(v)) for k, v in html._invalid_charrefs.items())


def invalid_codepoints():
    return ranges_of_set(html._invalid_codepoints)


def hx(v):
    return '0x%X' % v


def layout(items):
    """Lines of a braced-list body laid out in columns as clang-format 14 does.

    items: the item texts without their trailing comma. Every item is followed by ',' (the
    trailing comma keeps one item per slot); column widths are the widest item of each column.
    """
    lengths = [len(s) + 1 for s in items]  # with the ','
    avail = COLUMN_LIMIT - INDENT
    formats = []  # (columns, line_count, total_width, sizes)
    for columns in range(1, COLUMN_LIMIT // 3 + 1):
        sizes = [0] * columns
        mins = [sys.maxsize] * columns
        for i, n in enumerate(lengths):
            sizes[i % columns] = max(sizes[i % columns], n)
            mins[i % columns] = min(mins[i % columns], n)
        if len(lengths) < columns:
            break  # no row has that many items
        total = columns - 1 + sum(sizes)
        if any(sizes[k] - mins[k] > 10 for k in range(columns - 1)):
            continue
        if total > COLUMN_LIMIT and columns > 1:
            continue
        formats.append((columns, -(-len(lengths) // columns), total, sizes))
    best = None
    for fmt in reversed(formats):
        if fmt[2] <= avail or fmt[0] == 1:
            if best is not None and fmt[1] > best[1]:
                break
            best = fmt
    columns, _, _, sizes = best
    lines = []
    for row in range(0, len(items), columns):
        cells = []
        chunk = items[row:row + columns]
        for k, s in enumerate(chunk):
            cell = s + ','
            cells.append(cell if k == len(chunk) - 1 else cell.ljust(sizes[k]))
        lines.append(' ' * INDENT + ' '.join(cells))
    return lines


def table(decl, items, comment=None):
    out = []
    if comment:
        out.append('// ' + comment)
    out.append('constexpr %s = {' % decl)
    out.extend(layout(items))
    out.append('};')
    return out


def generate():
    pairs = lambda rs: ['{%s, %s}' % (hx(a), hx(b)) for a, b in rs]
    blocks = [
        table('CodeRange kLetterRanges[]', pairs(regex_ranges('L'))),
        table('CodeRange kNumberRanges[]', pairs(regex_ranges('N'))),
        table('LowerRun kLowerRuns[]',
              ['{%s, %s, %d, %d}' % (hx(a), hx(b), s, d) for a, b, s, d in lower_runs()]),
        table('NamedEntity kNamedEntities[]',
              ['{"%s", %s}' % (name, hx(cp)) for name, cp in named_entities()]),
        table('std::pair<char32_t, char32_t> kInvalidCharrefs[]', pairs(invalid_charrefs()),
              'html._invalid_charrefs: numeric references remapped like HTML5 (Windows-1252 for '
              '0x80-0x9F).'),
        table('CodeRange kInvalidCodepoints[]', pairs(invalid_codepoints()),
              'html._invalid_codepoints: numeric references to these decode to nothing.'),
        table('CodeRange kCasedRanges[]', pairs(regex_ranges('Cased'))),
        table('CodeRange kCaseIgnorableRanges[]', pairs(regex_ranges('Case_Ignorable'))),
    ]
    head = [
        '// Unicode / HTML tables of the CLIP text cleaning (src/model/text_clean.cc).',
        '// generated by scripts/gen_unicode_tables.py; do not edit.',
        '//',
        '// Generator run with CPython %s, unicodedata %s, regex %s:' %
        (sys.version.split()[0], unicodedata.unidata_version, regex.__version__),
        "//   kLetterRanges / kNumberRanges: maximal ranges of code points c with",
        "//     regex.match(r'\\p{L}', chr(c)) / regex.match(r'\\p{N}', chr(c)).",
        "//   kLowerRuns: every c with len(chr(c).lower()) == 1 and chr(c).lower() != chr(c), "
        "packed into",
        "//     runs of equal delta and stride 1 or 2 (the only multi-character mapping, U+0130, "
        "is handled",
        "//     in code).",
        "//   kNamedEntities: the entries of html.entities.html5 whose name (without ';') is an "
        "HTML 4 name",
        "//     (html.entities.name2codepoint), 'apos', or one of the legacy upper-case names AMP "
        "COPY GT LT",
        "//     QUOT REG; sorted by name (byte order). This includes every entry html5 accepts "
        "without ';'.",
        "//   kInvalidCharrefs / kInvalidCodepoints: html._invalid_charrefs / "
        "html._invalid_codepoints.",
        "//   kCasedRanges / kCaseIgnorableRanges: regex \\p{Cased} / \\p{Case_Ignorable} (for "
        "the",
        "//     final-sigma rule of str.lower()).",
        '//',
        '// Included by text_clean.cc inside its anonymous namespace, after the definitions of',
        '// CodeRange, LowerRun and NamedEntity and <utility> (std::pair).',
        '// clang-format off',
    ]
    lines = head
    for b in blocks:
        lines.append('')
        lines.extend(b)
    lines.append('// clang-format on')
    return '\n'.join(lines) + '\n'


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    g = ap.add_mutually_exclusive_group()
    g.add_argument('--out', metavar='PATH', help='write the generated file to PATH')
    g.add_argument('--check', metavar='PATH',
                   help='exit 1 (with a diff) if PATH differs from the generated text')
    args = ap.parse_args()
    text = generate()
    if args.check:
        with open(args.check, encoding='utf-8') as f:
            old = f.read()
        if old == text:
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            old.splitlines(True), text.splitlines(True), args.check, '(generated)'))
        return 1
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
