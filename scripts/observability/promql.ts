// Which metric names a PromQL expression reads. Enough of the grammar for our own expressions: strings,
// label matchers, ranges and grouping clauses are removed first, then every identifier that is not a
// function call, a keyword or part of a number/duration is a metric name.
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan', 'atan2']);

export function metricNames(expr: string): Set<string> {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = stripped[m.index - 1] ?? ' ';
    if (/[0-9.$]/.test(before)) continue; // 5m, 1e3, $variable
    const after = stripped.slice(m.index + m[0].length).trimStart();
    if (after.startsWith('(')) continue; // function or aggregation
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return names;
}

/** The metric families of an exposition (text format): name → type, from the # TYPE lines. */
export function exposedFamilies(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) out.set(m[1]!, m[2]!);
  return out;
}

/** Series every Prometheus adds to a scrape target itself. */
const SYNTHETIC = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);

/** The family a series name belongs to (histogram and summary series carry suffixes), if it is exposed. */
export function familyOf(name: string, families: Map<string, string>): string | undefined {
  if (families.has(name) || SYNTHETIC.has(name)) return name;
  const m = /^(.*)_(bucket|sum|count)$/.exec(name);
  if (m && ['histogram', 'summary'].includes(families.get(m[1]!) ?? '') && (m[2] !== 'bucket' || families.get(m[1]!) === 'histogram')) return m[1];
  return undefined;
}

/**
 * The rule's condition as a 0/1 vector (`bool` after each comparison outside label matchers and strings):
 * it returns series whenever its inputs exist, firing or not.
 */
export function asBool(expr: string): string {
  let out = '';
  let braces = 0;
  let quote = '';
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (quote) {
      out += c;
      if (c === '\\') out += expr[++i] ?? '';
      else if (c === quote) quote = '';
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '{') braces++;
    else if (c === '}') braces--;
    else if (braces === 0) {
      const op = /^(==|!=|<=|>=|<|>)/.exec(expr.slice(i))?.[0];
      if (op) {
        i += op.length - 1;
        out += /^\s*bool\b/.test(expr.slice(i + 1)) ? op : `${op} bool`;
        continue;
      }
    }
    out += c;
  }
  return out;
}
