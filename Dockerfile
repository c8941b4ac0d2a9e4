# The confirmation worker and the voice agent (one image, two commands: `npm run worker`,
# `npm run agent`). Secrets arrive through the environment at run time, never at build time.
FROM node:20-bookworm-slim
# espeak-ng: the agent's offline text-to-speech.
RUN apt-get update && apt-get install -y --no-install-recommends espeak-ng && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# .npmrc: onnxruntime-node (Silero's runtime) ships its CPU binaries; skip its optional GPU download.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev
COPY tsconfig.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY agent ./agent
USER node
CMD ["npm", "run", "worker"]
