import { useState } from "preact/hooks";
import { useApp } from "../context";
import { useLoad } from "../load";
import { agentHref } from "../router";
import type { Agent } from "../types";
import { ErrorNotice } from "./ErrorNotice";
import { percent, when } from "./format";
import { Metrics } from "./Metrics";

export function AgentList({ agentTypes }: { agentTypes: string[] }) {
  const { api } = useApp();
  const [archived, setArchived] = useState(false);
  const agents = useLoad(() => api.agents(archived), [archived]);
  const [agentType, setAgentType] = useState(agentTypes[0] ?? "tutor");
  const [creating, setCreating] = useState<unknown>(null);

  const getOrCreate = async (event: Event) => {
    event.preventDefault();
    try {
      const agent = await api.getOrCreate(agentType);
      location.hash = agentHref(agent.id);
    } catch (error) {
      setCreating(error);
    }
  };

  return (
    <section aria-labelledby="agents-title">
      <h1 id="agents-title">My agents</h1>
      <form class="inline" onSubmit={getOrCreate}>
        <label for="agent-type">
          Agent type
          <select id="agent-type" value={agentType} onChange={(e) => setAgentType(e.currentTarget.value)}>
            {agentTypes.map((type) => <option key={type} value={type}>{type}</option>)}
          </select>
        </label>
        <button type="submit">Open or create</button>
      </form>
      {creating !== null && <ErrorNotice error={creating} />}
      <label>
        <input type="checkbox" role="switch" checked={archived} onChange={(e) => setArchived(e.currentTarget.checked)} />
        Show archived agents
      </label>
      {agents.error !== null && <ErrorNotice error={agents.error} onRetry={agents.reload} />}
      {agents.loading && !agents.data && <p aria-busy="true">Loading agents…</p>}
      {agents.data?.length === 0 && <p>No agents yet: open one of a type above.</p>}
      {agents.data && agents.data.length > 0 && (
        <ul class="agents">
          {agents.data.map((agent) => <AgentCard key={agent.id} agent={agent} />)}
        </ul>
      )}
    </section>
  );
}

function AgentCard({ agent }: { agent: Agent }) {
  const last = agent.last_session;
  return (
    <li>
      <article data-agent-id={agent.id}>
        <header>
          <a href={agentHref(agent.id)}><strong>{agent.name}</strong></a>{" "}
          <span class={`badge ${agent.status}`}>{agent.status}</span>
          {agent.has_active_session && <span class="badge live">session in progress</span>}
        </header>
        <Metrics
          items={[
            ["Type", agent.agent_type],
            ["Sessions", agent.total_sessions],
            ["Completed", agent.successful_completions],
            ["Average score", percent(agent.average_score)],
            ["Last session", last ? `${last.status}, ${when(last.ended_at)}${last.summary?.score != null ? `, ${percent(last.summary.score)}` : ""}` : "none yet"],
          ]}
        />
      </article>
    </li>
  );
}
