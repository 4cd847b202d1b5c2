import { InvalidConnectionUrlError } from '../core/errors.ts';

/**
 * A connection URL taken apart: `scheme://[user[:password]@]host[:port][,host[:port]…][/path][?query]`,
 * or `scheme:path[?query]` (SQLite). Parsed by hand because WHATWG `URL` refuses a broker list
 * (`kafka://b1:9092,b2:9092`) and `sqlite::memory:`.
 */
export interface ConnectionUrl {
  /** Lower-case, without the colon: `redis`, `kafka`, `sqlite`. */
  readonly scheme: string;
  readonly username: string | undefined;
  readonly password: string | undefined;
  /** `host:port` entries as written (a port may be missing). Empty for `scheme:path`. */
  readonly hosts: readonly string[];
  /** Percent-decoded; without the leading slash after the hosts (`/3` → `3`); for `sqlite:` the file path. */
  readonly path: string;
  readonly params: ReadonlyMap<string, string>;
  /** The URL with the password replaced by `***`: what messages and logs may show. */
  readonly redacted: string;
}

/** Schemes whose URL is `scheme:path` (a file), never `scheme://host`. */
const FILE_SCHEMES = new Set(['sqlite']);

const SHAPE = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s;

export function parseConnectionUrl(url: string): ConnectionUrl {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new InvalidConnectionUrlError(
      'a connection URL must be a non-empty string, such as sqlite:./events.db or redis://127.0.0.1:6379',
    );
  }
  const redacted = redactUrl(url);
  const shape = SHAPE.exec(url.trim());
  if (!shape) throw new InvalidConnectionUrlError(`connection URL ${redacted} has no scheme (sqlite:, redis://, kafka://…)`);
  const scheme = shape[1]!.toLowerCase();
  let rest = shape[2]!;
  const hash = rest.indexOf('#');
  if (hash !== -1) throw new InvalidConnectionUrlError(`connection URL ${redacted} must not have a #fragment`);
  const q = rest.indexOf('?');
  const query = q === -1 ? '' : rest.slice(q + 1);
  rest = q === -1 ? rest : rest.slice(0, q);

  let username: string | undefined;
  let password: string | undefined;
  let hosts: string[] = [];
  let path: string;
  if (FILE_SCHEMES.has(scheme)) {
    // A file path, not an authority: `sqlite:///abs/x.db` and `sqlite://./x.db` drop the `//`.
    path = rest.startsWith('//') ? rest.slice(2) : rest;
  } else if (rest.startsWith('//')) {
    const authorityEnd = rest.indexOf('/', 2);
    const authority = authorityEnd === -1 ? rest.slice(2) : rest.slice(2, authorityEnd);
    path = authorityEnd === -1 ? '' : rest.slice(authorityEnd + 1);
    const at = authority.lastIndexOf('@');
    if (at !== -1) {
      const userinfo = authority.slice(0, at);
      const colon = userinfo.indexOf(':');
      username = decode(colon === -1 ? userinfo : userinfo.slice(0, colon), 'user name', redacted) || undefined;
      password = colon === -1 ? undefined : decode(userinfo.slice(colon + 1), 'password', redacted);
    }
    const hostList = at === -1 ? authority : authority.slice(at + 1);
    hosts = hostList === '' ? [] : hostList.split(',').map((h) => h.trim());
    for (const host of hosts) {
      if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:\d{1,5})?$/.test(host)) {
        throw new InvalidConnectionUrlError(`connection URL ${redacted} has an invalid host ${JSON.stringify(host)}`);
      }
    }
  } else {
    path = rest;
  }
  path = decode(path, 'path', redacted);

  const params = new Map<string, string>();
  for (const [key, value] of new URLSearchParams(query)) {
    if (params.has(key)) throw new InvalidConnectionUrlError(`connection URL ${redacted} sets the parameter "${key}" twice`, key);
    params.set(key, value);
  }
  return { scheme, username, password, hosts, path, params, redacted };
}

/** `redis://app:s3cret@h` → `redis://app:***@h`; text without credentials is returned as is. */
export function redactUrl(text: string): string {
  return text.replace(/(\/\/[^/?#@\s:]*:)[^@/?#\s]*@/g, '$1***@');
}

/**
 * Removes secrets from an error's message and stack (in place, so its type and fields stay), for
 * errors that may quote what a client was given.
 */
export function scrubError(error: unknown, secrets: readonly string[]): unknown {
  const list = secrets.filter((s) => s.length > 0).flatMap((s) => [s, encodeURIComponent(s)]);
  if (list.length === 0 || !(error instanceof Error)) return error;
  const scrub = (text: string): string => list.reduce((t, secret) => t.split(secret).join('***'), redactUrl(text));
  error.message = scrub(error.message);
  if (error.stack) error.stack = scrub(error.stack);
  if (error.cause instanceof Error) scrubError(error.cause, secrets);
  return error;
}

function decode(text: string, what: string, redacted: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new InvalidConnectionUrlError(`connection URL ${redacted} has a malformed percent-escape in its ${what}`);
  }
}
