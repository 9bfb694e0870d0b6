import { expect } from 'chai';
import { ConfigError, helpText, loadConfig, VARS } from './config.js';

const base = { NODE_ID: 'n1', PEERS: 'n1=127.0.0.1:7001,n2=127.0.0.1:7002,n3=127.0.0.1:7003', STEGO_CLUSTER_SECRET: 's' };

describe('config', () => {
  it('turns default timings into ticks: 5 ms tick, heartbeat 10 ticks, election 30 ticks', () => {
    const c = loadConfig(base);
    expect([c.tickMs, c.heartbeatTicks, c.electionTicks]).to.deep.equal([5, 10, 30]);
    expect(c.raftPort).to.equal(7001);
    expect(c.peers.size).to.equal(3);
    expect(c.maxObjectBytes).to.equal(16 * 1024 * 1024);
    expect(c.join).to.equal(false);
  });

  it('honours overrides and STEGO_JOIN', () => {
    const c = loadConfig({ ...base, STEGO_TICK_MS: '10', STEGO_HEARTBEAT_MS: '100', STEGO_ELECTION_MS: '1000', STEGO_JOIN: '1', RAFT_PORT: '9000' });
    expect([c.heartbeatTicks, c.electionTicks, c.join, c.raftPort]).to.deep.equal([10, 100, true, 9000]);
  });

  it('raises the consensus thread to nice -20 unless STEGO_CONSENSUS_NICE says otherwise (-20..19)', () => {
    expect(loadConfig(base).consensusNice).to.equal(-20);
    expect(loadConfig({ ...base, STEGO_CONSENSUS_NICE: '0' }).consensusNice).to.equal(0);
    expect(() => loadConfig({ ...base, STEGO_CONSENSUS_NICE: '-21' })).to.throw(ConfigError, 'STEGO_CONSENSUS_NICE');
  });

  it('STEGO_GC is single-threaded or parallel', () => {
    expect(() => loadConfig({ ...base, STEGO_GC: 'parallel' })).not.to.throw();
    expect(() => loadConfig({ ...base, STEGO_GC: 'concurrent' })).to.throw(ConfigError, 'STEGO_GC');
  });

  it('STEGO_COMPILE is eager or lazy', () => {
    expect(() => loadConfig({ ...base, STEGO_COMPILE: 'lazy' })).not.to.throw();
    expect(() => loadConfig({ ...base, STEGO_COMPILE: 'jit' })).to.throw(ConfigError, 'STEGO_COMPILE');
  });

  it('reports every problem at once with the variable names', () => {
    let err: unknown;
    try {
      loadConfig({ NODE_ID: 'bad id', PEERS: 'n1=nohost,n2=h:2', STEGO_TICK_MS: 'x', STEGO_HEARTBEAT_MS: '200', STEGO_ELECTION_MS: '100' });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(ConfigError);
    const msg = (err as ConfigError).message;
    for (const name of ['NODE_ID', 'PEERS entry', 'STEGO_TICK_MS', 'STEGO_ELECTION_MS', 'STEGO_CLUSTER_SECRET']) expect(msg).to.include(name);
  });

  it('--help lists every variable with its default', () => {
    const help = helpText();
    for (const v of VARS) {
      expect(help).to.include(v.name);
      expect(help).to.include(v.default);
    }
  });
});
