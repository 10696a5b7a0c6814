import { BadRequestException } from '@nestjs/common';
import { assertNoPrototypeKeys } from './validation';

const fieldsOf = (fn: () => void) => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(BadRequestException);
    return ((error as BadRequestException).getResponse() as { fields: { field: string }[] }).fields.map((f) => f.field);
  }
  throw new Error('expected a 400');
};

describe('assertNoPrototypeKeys', () => {
  it('refuses prototype keys at any depth, naming the field', () => {
    expect(fieldsOf(() => assertNoPrototypeKeys(JSON.parse('{"a":{"__proto__":{"x":1}}}')))).toEqual(['a.__proto__']);
    expect(fieldsOf(() => assertNoPrototypeKeys(JSON.parse('{"list":[{"constructor":1}]}')))).toEqual(['list[0].constructor']);
  });

  // Regression: a NUL in a PATCH body reached PostgreSQL ("invalid byte sequence") and came back as a 500.
  it('refuses NUL characters in values and keys with a 400 naming the field, instead of a database 500', () => {
    expect(fieldsOf(() => assertNoPrototypeKeys({ name: 'a\u0000b' }))).toEqual(['name']);
    expect(fieldsOf(() => assertNoPrototypeKeys({ scopes: ['read', '\u0000'] }))).toEqual(['scopes[1]']);
    expect(fieldsOf(() => assertNoPrototypeKeys('\u0000', 'id'))).toEqual(['id']);
    expect(fieldsOf(() => assertNoPrototypeKeys({ 'a\u0000': 1 }))).toEqual(['(body)']);
    // Lone surrogates, as JSON.parse gives them: a 400 naming the field, not a 500 from PostgreSQL.
    expect(fieldsOf(() => assertNoPrototypeKeys(JSON.parse('{"external_id":"\\ud800"}')))).toEqual(['external_id']);
    expect(fieldsOf(() => assertNoPrototypeKeys(JSON.parse('{"names":["ok","x\\udc00y"]}')))).toEqual(['names[1]']);
    expect(fieldsOf(() => assertNoPrototypeKeys(JSON.parse('{"\\ud800":1}')))).toEqual(['(body)']);
  });

  it('lets ordinary input through', () => {
    expect(() => assertNoPrototypeKeys({ name: 'Ünïcode ✓ 😀', nested: [{ proto: 1 }], n: 1, b: null })).not.toThrow();
  });
});
