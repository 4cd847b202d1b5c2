/** A short description of any value for an error message; never throws on a Symbol. */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value.length > 60 ? `${JSON.stringify(value.slice(0, 60))}…` : JSON.stringify(value);
    case 'symbol':
      return value.toString();
    case 'bigint':
      return `${value}n`;
    case 'function':
      return 'a function';
    case 'object':
      if (value === null) return 'null';
      if (Array.isArray(value)) return 'an array';
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an Invalid Date' : 'a Date';
      return 'an object';
    default:
      return String(value);
  }
}
