/** One routing node for a test: real nginx plus an in-process agent whose logs the test reads. */
import { startNginxNode, type NginxNode, type NginxNodeOptions } from '../../agent/sandbox/sandbox.js';
import { AGENT_DEFAULTS, startAgent, type AgentOptions, type RunningAgent } from '../../agent/run-agent.js';
import { captureLog, type CapturedLog } from './log-capture.js';

export interface RoutingNode {
  readonly nginx: NginxNode;
  agent: RunningAgent;
  logs: CapturedLog;
  /** Stops the agent and starts a fresh one (new memory, same flags). */
  restartAgent(overrides?: Partial<AgentOptions>): Promise<void>;
  stop(): Promise<void>;
}

export async function startRoutingNode(marathonUrls: string, agentOptions: Partial<AgentOptions> = {}, nginxOptions: NginxNodeOptions = {}): Promise<RoutingNode> {
  const nginx = await startNginxNode({ workerProcesses: 2, ...nginxOptions });
  const launch = (overrides: Partial<AgentOptions>) => {
    const logs = captureLog();
    const agent = startAgent(
      {
        ...AGENT_DEFAULTS,
        marathon: marathonUrls,
        nginxAdmin: nginx.adminUrl,
        adminToken: nginx.adminToken,
        redis: null,
        group: null,
        ...agentOptions,
        ...overrides,
      },
      logs.log,
    );
    return { agent, logs };
  };
  const node: RoutingNode = {
    nginx,
    ...launch({}),
    async restartAgent(overrides = {}) {
      await node.agent.stop();
      Object.assign(node, launch(overrides));
    },
    async stop() {
      await node.agent.stop();
      await nginx.process.stop();
    },
  };
  return node;
}
