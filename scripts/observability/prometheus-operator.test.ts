// The config reloader's step between the Prometheus Operator's generated file and Prometheus: $(NAME)
// references replaced by the reloader's environment, an unset one refused.
import { expect } from 'chai';
import { expandReloaderEnv } from './prometheus-operator.js';

describe("observability: the Prometheus Operator's generated file as the config reloader hands it to Prometheus", () => {
  it('replaces every $(NAME) by its value', () => {
    const text = 'external_labels:\n  prometheus_replica: $(POD_NAME)\n- source_labels: [__tmp_hash]\n  regex: $(SHARD)\n  action: keep\n';
    expect(expandReloaderEnv(text, { POD_NAME: 'prometheus-stego-0', SHARD: '0' })).to.equal(
      'external_labels:\n  prometheus_replica: prometheus-stego-0\n- source_labels: [__tmp_hash]\n  regex: 0\n  action: keep\n',
    );
  });

  it('refuses a reference the environment does not set, and leaves ${1} replacements alone', () => {
    expect(() => expandReloaderEnv('regex: $(SHARD)', {})).to.throw(/\$\(SHARD\)/);
    expect(expandReloaderEnv('replacement: ${1}', {})).to.equal('replacement: ${1}');
  });
});
