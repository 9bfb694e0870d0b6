import { expect } from 'chai';
import { safeFilename } from './filename.js';

describe('safeFilename', () => {
  const cases: [string | null | undefined, string][] = [
    ['report.pdf', 'report.pdf'],
    ['../../etc/passwd', 'passwd'],
    ['C:\\Users\\me\\secret.txt', 'secret.txt'],
    ['evil\r\nX-Header: 1.txt', 'evilX-Header: 1.txt'],
    ['résumé 日本.txt', 'résumé 日本.txt'],
    ['..', 'payload.bin'],
    ['dir/', 'payload.bin'],
    ['', 'payload.bin'],
    [null, 'payload.bin'],
    [undefined, 'payload.bin'],
  ];
  for (const [input, expected] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      expect(safeFilename(input)).to.equal(expected);
    });
  }
});
