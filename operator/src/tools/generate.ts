// `npm run generate`: writes the CRD YAML and the chart's copy (operator/src/api/schema.ts) and the chart's
// RBAC (operator/src/rbac.ts).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CHART_CRD_FILE, CRD_FILE, chartCrdTemplate, crdYaml } from '../api/crd-yaml.js';
import { REPO_ROOT as root } from '../api/repo-root.js';
import { CHART_RBAC_FILE, chartRbacTemplate } from './chart-rbac.js';

async function write(rel: string, text: string): Promise<void> {
  const file = path.join(root, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
  console.log(`wrote ${rel}`);
}

await write(CRD_FILE, crdYaml());
await write(CHART_CRD_FILE, chartCrdTemplate());
await write(CHART_RBAC_FILE, chartRbacTemplate());
