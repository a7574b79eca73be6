// The route table of the local control plane: SMS v3 paths (sections 3.2,
// 4.1, 4.2, 4.3) and ferry's extensions, each mapped to one service call.

import type { Authenticator } from './auth.js';
import { badRequest } from './api-error.js';
import type { Route } from './http-server.js';
import type { ControlPlaneService } from './service.js';

/** Largest log archive POST /v3/tasks/{id}/log-archive accepts. */
export const MAX_LOG_UPLOAD = 512 * 1024 * 1024;

export function buildRoutes(svc: ControlPlaneService, auth: Authenticator): Route[] {
  const ok = () => ({ body: {} });
  return [
    {
      method: 'POST',
      pattern: '/v3/auth/tokens',
      auth: false,
      handler: async (ctx) => {
        const { token, body } = await auth.issueToken(ctx.body);
        return { status: 201, body, headers: { 'X-Subject-Token': token } };
      },
    },
    // ---- sources (4.1)
    { method: 'GET', pattern: '/v3/errors', handler: (ctx) => ({ body: svc.migrationErrors(ctx.query) }) },
    { method: 'POST', pattern: '/v3/sources', handler: async (ctx) => ({ body: await svc.registerSource(ctx.body) }) },
    { method: 'GET', pattern: '/v3/sources', handler: (ctx) => ({ body: svc.listSources(ctx.query) }) },
    { method: 'GET', pattern: '/v3/sources/overview', handler: () => ({ body: svc.overview() }) },
    { method: 'POST', pattern: '/v3/sources/delete', handler: async (ctx) => (await svc.deleteSources(ctx.body), ok()) },
    { method: 'GET', pattern: '/v3/sources/{source_id}', handler: (ctx) => ({ body: svc.showSource(ctx.params.source_id!) }) },
    { method: 'PUT', pattern: '/v3/sources/{source_id}', handler: async (ctx) => (await svc.updateSource(ctx.params.source_id!, ctx.body), ok()) },
    {
      method: 'DELETE',
      pattern: '/v3/sources/{source_id}',
      handler: async (ctx) => {
        const f = ctx.query.get('force');
        if (f !== null && f !== 'true' && f !== 'false') throw badRequest('SMS.9001', 'Invalid parameters: force must be true or false.', ['force']);
        await svc.deleteSource(ctx.params.source_id!, f === 'true');
        return ok();
      },
    },
    { method: 'PUT', pattern: '/v3/sources/{source_id}/diskinfo', handler: async (ctx) => (await svc.updateDiskInfo(ctx.params.source_id!, ctx.body), ok()) },
    { method: 'PUT', pattern: '/v3/sources/{source_id}/changestate', handler: async (ctx) => (await svc.changeState(ctx.params.source_id!, ctx.body), ok()) },
    // ---- commands (4.3)
    { method: 'GET', pattern: '/v3/sources/{server_id}/command', handler: async (ctx) => ({ body: await svc.nextCommand(ctx.params.server_id!) }) },
    { method: 'POST', pattern: '/v3/sources/{server_id}/command_result', handler: async (ctx) => (await svc.commandResult(ctx.params.server_id!, ctx.body), ok()) },
    { method: 'GET', pattern: '/v3/sources/{server_id}/commands', handler: (ctx) => ({ body: svc.commands(ctx.params.server_id!) }) },
    // ---- tasks (4.2)
    { method: 'POST', pattern: '/v3/tasks', handler: async (ctx) => ({ body: await svc.createTask(ctx.body) }) },
    { method: 'GET', pattern: '/v3/tasks', handler: (ctx) => ({ body: svc.listTasks(ctx.query) }) },
    { method: 'POST', pattern: '/v3/tasks/delete', handler: async (ctx) => (await svc.deleteTasks(ctx.body), ok()) },
    { method: 'GET', pattern: '/v3/tasks/{task_id}', handler: (ctx) => ({ body: svc.showTask(ctx.params.task_id!) }) },
    { method: 'PUT', pattern: '/v3/tasks/{task_id}', handler: async (ctx) => ({ body: await svc.updateTask(ctx.params.task_id!, ctx.body) }) },
    { method: 'DELETE', pattern: '/v3/tasks/{task_id}', handler: async (ctx) => (await svc.deleteTask(ctx.params.task_id!), ok()) },
    { method: 'POST', pattern: '/v3/tasks/{task_id}/action', handler: async (ctx) => (await svc.taskAction(ctx.params.task_id!, ctx.body), ok()) },
    { method: 'PUT', pattern: '/v3/tasks/{task_id}/progress', handler: async (ctx) => (await svc.reportProgress(ctx.params.task_id!, ctx.body), ok()) },
    { method: 'GET', pattern: '/v3/tasks/{task_id}/progress-history', handler: (ctx) => ({ body: svc.progressHistory(ctx.params.task_id!, ctx.query) }) },
    { method: 'GET', pattern: '/v3/tasks/{task_id}/speed-limit', handler: (ctx) => ({ body: svc.getSpeedLimit(ctx.params.task_id!) }) },
    { method: 'POST', pattern: '/v3/tasks/{task_id}/speed-limit', handler: async (ctx) => (await svc.setSpeedLimit(ctx.params.task_id!, ctx.body), ok()) },
    { method: 'GET', pattern: '/v3/tasks/{task_id}/certkey', handler: async (ctx) => ({ body: await svc.certKey(ctx.params.task_id!, ctx.query) }) },
    // collectLog (the SDK's JSON body {log_bucket}); /collect-log is ferry's older spelling of the same call.
    { method: 'POST', pattern: '/v3/tasks/{task_id}/log', handler: async (ctx) => (await svc.collectLog(ctx.params.task_id!, ctx.body), ok()) },
    { method: 'POST', pattern: '/v3/tasks/{task_id}/collect-log', handler: async (ctx) => (await svc.collectLog(ctx.params.task_id!, ctx.body), ok()) },
    {
      method: 'POST',
      pattern: '/v3/tasks/{task_id}/log-archive',
      upload: { maxBytes: MAX_LOG_UPLOAD },
      handler: async (ctx) => ({ body: await svc.storeLog(ctx.params.task_id!, ctx.upload) }),
    },
  ];
}
