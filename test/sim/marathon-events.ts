import { normalizeHealthCheck } from './marathon-json.js';
import { isoNow, type AppRecord, type MesosTaskState, type TaskRecord } from './sim-model.js';

/** Builders for Marathon event-bus payloads, in the shapes Marathon's code writes. */

export interface MarathonEvent {
  eventType: string;
  timestamp: string;
  [key: string]: unknown;
}

export type DeploymentAction = 'ScaleApplication' | 'StopApplication' | 'RestartApplication' | 'StartApplication';

/** A light-format deployment plan (no `original`/`target`), steps in the current RAML shape. */
export interface DeploymentPlan {
  id: string;
  version: string;
  action: DeploymentAction;
  appId: string;
}

/** Marathon's instance condition for each task state the simulator uses. */
const CONDITION_BY_STATE: Record<MesosTaskState, string> = {
  TASK_STAGING: 'Staging',
  TASK_RUNNING: 'Running',
  TASK_KILLING: 'Killing',
  TASK_KILLED: 'Killed',
};

function event(eventType: string, fields: Record<string, unknown>): MarathonEvent {
  return { ...fields, eventType, timestamp: isoNow() };
}

export function eventStreamAttached(remoteAddress: string): MarathonEvent {
  return event('event_stream_attached', { remoteAddress });
}

export function eventStreamDetached(remoteAddress: string): MarathonEvent {
  return event('event_stream_detached', { remoteAddress });
}

export function apiPostEvent(appDefinition: Record<string, unknown>, uri: string): MarathonEvent {
  return event('api_post_event', { clientIp: '127.0.0.1', uri, appDefinition });
}

export function statusUpdateEvent(task: TaskRecord, taskStatus: MesosTaskState): MarathonEvent {
  return event('status_update_event', {
    slaveId: task.slaveId,
    taskId: task.id,
    taskStatus,
    message: '',
    appId: task.appId,
    host: task.host,
    ipAddresses: [{ ipAddress: task.host, protocol: 'IPv4' }],
    ports: [task.port, ...task.morePorts],
    version: task.version,
  });
}

export function instanceChangedEvent(task: TaskRecord, state: MesosTaskState, runSpecVersion: string): MarathonEvent {
  return event('instance_changed_event', {
    instanceId: task.instanceId,
    condition: CONDITION_BY_STATE[state],
    runSpecId: task.appId,
    agentId: task.slaveId,
    host: task.host,
    runSpecVersion,
  });
}

export function healthStatusChangedEvent(task: TaskRecord, alive: boolean): MarathonEvent {
  return event('health_status_changed_event', {
    appId: task.appId,
    instanceId: task.instanceId,
    version: task.version,
    alive,
  });
}

export function instanceHealthChangedEvent(task: TaskRecord, healthy: boolean): MarathonEvent {
  return event('instance_health_changed_event', {
    instanceId: task.instanceId,
    runSpecId: task.appId,
    healthy,
    runSpecVersion: task.version,
  });
}

/**
 * Marathon's code writes the instance id under `taskId`; the 1.4 changelog shows `instanceId`.
 * Both keys are sent so a consumer written against either works.
 */
export function failedHealthCheckEvent(task: TaskRecord, healthCheck: Record<string, unknown>): MarathonEvent {
  return event('failed_health_check_event', {
    appId: task.appId,
    taskId: task.instanceId,
    instanceId: task.instanceId,
    healthCheck: normalizeHealthCheck(healthCheck),
  });
}

/** A whole-group change applied at once (Marathon: `GroupChangeSuccess`), e.g. a bulk load under "/". */
export function groupChangeSuccessEvent(groupId: string, version: string): MarathonEvent {
  return event('group_change_success', { groupId, version });
}

export function appTerminatedEvent(app: AppRecord): MarathonEvent {
  return event('app_terminated_event', { appId: app.spec.id });
}

export function renderPlan(plan: DeploymentPlan): Record<string, unknown> {
  return {
    id: plan.id,
    steps: [{ actions: [{ action: plan.action, app: plan.appId }] }],
    version: plan.version,
  };
}

function currentStep(plan: DeploymentPlan): Record<string, unknown> {
  return { actions: [{ action: plan.action, app: plan.appId }] };
}

export function deploymentInfoEvent(plan: DeploymentPlan): MarathonEvent {
  return event('deployment_info', { plan: renderPlan(plan), currentStep: currentStep(plan) });
}

export function deploymentStepSuccessEvent(plan: DeploymentPlan): MarathonEvent {
  return event('deployment_step_success', { plan: renderPlan(plan), currentStep: currentStep(plan) });
}

export function deploymentStepFailureEvent(plan: DeploymentPlan): MarathonEvent {
  return event('deployment_step_failure', { plan: renderPlan(plan), currentStep: currentStep(plan) });
}

export function deploymentSuccessEvent(plan: DeploymentPlan): MarathonEvent {
  return event('deployment_success', { id: plan.id, plan: renderPlan(plan) });
}

export function deploymentFailedEvent(plan: DeploymentPlan, reason: string): MarathonEvent {
  return event('deployment_failed', { id: plan.id, plan: renderPlan(plan), reason });
}

/** `GET /v2/deployments` entry for a plan in flight. */
export function renderDeployment(plan: DeploymentPlan): Record<string, unknown> {
  return {
    id: plan.id,
    version: plan.version,
    affectedApps: [plan.appId],
    affectedPods: [],
    steps: [{ actions: [{ action: plan.action, app: plan.appId }] }],
    currentActions: [{ action: plan.action, app: plan.appId, readinessCheckResults: [] }],
    currentStep: 1,
    totalSteps: 1,
  };
}
