import { useState } from "preact/hooks";
import { useApp } from "../context";
import { useLoad } from "../load";
import type { Agent } from "../types";
import { ArchiveAgent } from "./ArchiveAgent";
import { ErrorNotice } from "./ErrorNotice";
import { percent } from "./format";
import { History } from "./History";
import { LiveSession } from "./LiveSession";
import { Members } from "./Members";
import { Metrics } from "./Metrics";
import { Preferences } from "./Preferences";
import { StartSession } from "./StartSession";

export function AgentPage({ agentId }: { agentId: string }) {
  const { api, user } = useApp();
  const agent = useLoad(() => api.agent(agentId), [agentId]);
  // The current session comes from the aggregate itself, never from a lagging read model.
  const session = useLoad(() => api.session(agentId), [agentId]);
  const [historyRound, setHistoryRound] = useState(0);

  if (agent.error !== null) return <ErrorNotice error={agent.error} onRetry={agent.reload} />;
  if (!agent.data) return <p aria-busy="true">Loading the agent…</p>;
  const a: Agent = agent.data;
  const current = session.data?.session ?? null;
  // An observer follows along; the server refuses their writes (403) anyway.
  const observing = a.owner_user_id !== user.sub &&
    a.assignments.some((x) => x.user_id === user.sub && x.role === "observer");
  const acting = a.status === "active" && !observing;
  const sessionEnded = () => {
    agent.reload();
    setHistoryRound((r) => r + 1);
  };

  return (
    <section aria-labelledby="agent-title">
      <nav aria-label="breadcrumb"><ul><li><a href="#/">My agents</a></li><li>{a.name}</li></ul></nav>
      <h1 id="agent-title">
        {a.name} <span class={`badge ${a.status}`}>{a.status}</span>
      </h1>
      <Metrics
        items={[
          ["Type", a.agent_type],
          ["Sessions", a.total_sessions],
          ["Interactions", a.total_interactions],
          ["Average score", percent(a.average_score)],
        ]}
      />
      {session.error !== null && <ErrorNotice error={session.error} onRetry={session.reload} />}
      {observing && (
        <p class="notice" role="note">You are observing this agent: you can follow its sessions, not answer.</p>
      )}
      {a.status === "active" && session.data && (
        current && current.ended_at === null ? (
          <LiveSession
            key={current.session_id}
            agentId={a.id}
            sessionId={current.session_id}
            readOnly={observing}
            onEnded={sessionEnded}
            onStartAnother={session.reload}
          />
        ) : (
          acting && <StartSession agent={a} onStarted={session.reload} />
        )
      )}
      <History agentId={a.id} round={historyRound} />
      <Members agent={a} onChanged={agent.reload} />
      {acting && (
        <>
          <Preferences agent={a} onSaved={agent.reload} />
          <ArchiveAgent agent={a} onArchived={() => { agent.reload(); session.reload(); }} />
        </>
      )}
    </section>
  );
}
