// Lightning Loop on Azure: the Functions host of the loop and everything it talks to, in one resource
// group, composed from modules/. `azd up` deploys it (azure.yaml; parameters in main.parameters.json).
//
// Identity-based access only: no account key, SAS or key-bearing connection string is created or passed
// anywhere (Storage, Cosmos DB, Service Bus and Azure OpenAI all have local auth disabled).
// The Kubernetes cluster (AKS) that runs the agents is not deployed here: see README.md.
//
// Without azd:  az deployment sub create -l <region> -f infra/bicep/main.bicep \
//                 -p environmentName=<name> location=<region> [principalId=<your object id>]

targetScope = 'subscription'

// --- parameters -----------------------------------------------------------------------------------

@description('azd environment name: the resource group is rg-<environmentName>.')
@minLength(1)
@maxLength(64)
param environmentName string

@description('Region of every resource except Azure OpenAI.')
@minLength(1)
param location string

@description('Short name every resource name is derived from: 3-12 lowercase letters, digits and hyphens, starting with a letter, not ending with a hyphen (checked below).')
@minLength(3)
@maxLength(12)
param baseName string = 'lightning'

@description('Enabled (default, dev) or Disabled (prod) public network access of every data service and the Function App. Disabled is refused until the template creates private endpoints and VNet integration: see infra/bicep/README.md (Private networking).')
@allowed([
  'Enabled'
  'Disabled'
])
param publicNetworkAccess string = 'Enabled'

@description('Object id of the user (or service principal) running azd: gets the agents\' data-plane roles so a local agent can feed the loop. Empty for none.')
param principalId string = ''

@description('Type of principalId.')
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@description('Region of the Azure OpenAI account: pick one where fine-tuning of the base model is offered.')
param openAiLocation string = location

@description('Name of the base model deployment the agents call (AZURE_OPENAI_DEPLOYMENT).')
param openAiDeploymentName string = 'gpt-4o-mini'

@description('Version of the gpt-4o-mini base model.')
param openAiModelVersion string = '2024-07-18'

@description('SKU of the base model deployment.')
param openAiDeploymentSku string = 'GlobalStandard'

@description('Capacity of the base model deployment (thousands of tokens per minute).')
@minValue(1)
param openAiDeploymentCapacity int = 30

@description('Deployment of the task_adherence judge (AZURE_OPENAI_JUDGE_DEPLOYMENT); empty uses the rubric evaluator.')
param openAiJudgeDeploymentName string = ''

@description('API server URL of the existing AKS cluster that runs the agents, e.g. https://<cluster>.hcp.<region>.azmk8s.io:443. Empty: no rollout (promotions deploy the model and update the registry).')
param k8sApiServer string = ''

@description('Base64 PEM of the AKS cluster CA (certificate-authority-data of `az aks get-credentials`); required with k8sApiServer.')
param k8sCaCertData string = ''

@description('Kubernetes namespace of the agents.')
param k8sNamespace string = 'mcp-agents'

@description('NCRONTAB (with seconds) of the dataset-building timer.')
param datasetTimerSchedule string = '0 */30 * * * *'

@description('Minimum labeled episodes before a dataset is built.')
param datasetMinEpisodes string = '50'

@description('Minimum reward of an episode that goes into a dataset.')
param datasetMinReward string = '0.7'

@description('Minimum hours between two datasets of one agent.')
param datasetMinHoursBetween string = '24'

@description('Seconds between two polls of a running fine-tuning job.')
param fineTunePollSeconds string = '60'

@description('How much worse than the active model a candidate may score and still be promoted.')
param promotionTolerance string = '0.02'

@description('Evaluator used by the change feed and label-batch.')
param evaluator string = 'task_adherence'

@description('Maximum instances of the Flex Consumption Function App.')
param functionMaximumInstanceCount int = 40

// --- checks ---------------------------------------------------------------------------------------

// Bicep has no regular expressions, and pycep-parser 0.5 (which checkov pins, and which the offline tests
// read this file with) knows neither lambdas nor fail(). So the name is split on every allowed character
// (what is left over is what is not allowed), and a refusal indexes `refuse` with the message: `if()`
// evaluates only the branch it takes, and the deployment stops with "The language expression property
// '<message>' doesn't exist" before anything is created. An `_` would break the storage and Service
// Bus names.
var letters = 'abcdefghijklmnopqrstuvwxyz'
var nameChars = split('a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q,r,s,t,u,v,w,x,y,z,0,1,2,3,4,5,6,7,8,9,-', ',')
var baseNameInvalidChars = join(split(baseName, nameChars), '')
var baseNameIsValid = (empty(baseNameInvalidChars) && contains(letters, first(baseName)) && !endsWith(baseName, '-'))
var refuse = {
  ok: 'ok'
}
var checkedBaseName = baseNameIsValid ? baseName : refuse['baseName \'${baseName}\' is not valid: use 3-12 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen (e.g. lightning).']

// Private networking is not built yet (see README.md, Private networking): Disabled would leave a Function
// App that cannot reach its storage, queues or database, so it is refused before anything is created.
var checkedPublicNetworkAccess = (publicNetworkAccess == 'Enabled') ? publicNetworkAccess : refuse['publicNetworkAccess=${publicNetworkAccess} needs private endpoints, private DNS zones, a VNet-integrated Function App and Service Bus Premium, which this template does not create yet. Deploy with Enabled, or add the resources listed in infra/bicep/README.md (Private networking).']

// --- names and constants --------------------------------------------------------------------------

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location, checkedBaseName))
var tags = {
  'azd-env-name': environmentName
  'app': 'lightning-loop'
}
var cosmosDatabaseName = 'agents'
var datasetsContainerName = 'datasets'
var deploymentContainerName = 'function-app-package'
var queueMaxDeliveryCount = 5 // = Settings.queue_max_delivery_count (QUEUE_MAX_DELIVERY_COUNT)

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

// --- modules --------------------------------------------------------------------------------------

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${checkedBaseName}-${resourceToken}'
    appInsightsName: 'appi-${checkedBaseName}-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: take('st${replace(checkedBaseName, '-', '')}${resourceToken}', 24)
    location: location
    tags: tags
    publicNetworkAccess: checkedPublicNetworkAccess
    datasetsContainerName: datasetsContainerName
    deploymentContainerName: deploymentContainerName
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    accountName: 'cosmos-${checkedBaseName}-${resourceToken}'
    location: location
    tags: tags
    publicNetworkAccess: checkedPublicNetworkAccess
    databaseName: cosmosDatabaseName
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    namespaceName: 'sb-${checkedBaseName}-${resourceToken}'
    location: location
    tags: tags
    publicNetworkAccess: checkedPublicNetworkAccess
    maxDeliveryCount: queueMaxDeliveryCount
  }
}

module openAi 'modules/openai.bicep' = {
  name: 'openai'
  scope: rg
  params: {
    accountName: 'oai-${checkedBaseName}-${resourceToken}'
    location: openAiLocation
    tags: tags
    publicNetworkAccess: checkedPublicNetworkAccess
    deploymentName: openAiDeploymentName
    modelVersion: openAiModelVersion
    deploymentSku: openAiDeploymentSku
    deploymentCapacity: openAiDeploymentCapacity
  }
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    functionIdentityName: 'id-${checkedBaseName}-${resourceToken}'
    agentIdentityName: 'id-${checkedBaseName}-agents-${resourceToken}'
    location: location
    tags: tags
    storageAccountName: storage.outputs.name
    cosmosAccountName: cosmos.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    openAiAccountName: openAi.outputs.name
    principalId: principalId
    principalType: principalType
  }
}

// Takes the identity module's outputs, so it is created after the role assignments it runs with.
module functions 'modules/functions.bicep' = {
  name: 'functions'
  scope: rg
  params: {
    planName: 'plan-${checkedBaseName}-${resourceToken}'
    functionAppName: 'func-${checkedBaseName}-${resourceToken}'
    location: location
    tags: tags
    publicNetworkAccess: checkedPublicNetworkAccess
    maximumInstanceCount: functionMaximumInstanceCount
    identityId: identity.outputs.functionIdentityId
    identityClientId: identity.outputs.functionIdentityClientId
    storageAccountName: storage.outputs.name
    storageBlobEndpoint: storage.outputs.blobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    datasetsContainerName: storage.outputs.datasetsContainerName
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmos.outputs.databaseName
    serviceBusNamespace: serviceBus.outputs.fullyQualifiedNamespace
    queueMaxDeliveryCount: queueMaxDeliveryCount
    openAiAccountName: openAi.outputs.name
    openAiEndpoint: openAi.outputs.endpoint
    openAiDeploymentName: openAi.outputs.deploymentName
    openAiJudgeDeploymentName: openAiJudgeDeploymentName
    appInsightsName: monitoring.outputs.appInsightsName
    k8sApiServer: k8sApiServer
    k8sCaCertData: k8sCaCertData
    k8sNamespace: k8sNamespace
    datasetTimerSchedule: datasetTimerSchedule
    datasetMinEpisodes: datasetMinEpisodes
    datasetMinReward: datasetMinReward
    datasetMinHoursBetween: datasetMinHoursBetween
    fineTunePollSeconds: fineTunePollSeconds
    promotionTolerance: promotionTolerance
    evaluator: evaluator
  }
}

// --- outputs (azd stores them in the environment; the post-provision hook reads them) --------------

output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output FUNCTION_APP_NAME string = functions.outputs.name
output FUNCTION_APP_HOST string = functions.outputs.defaultHostName
output FUNCTION_IDENTITY_NAME string = identity.outputs.functionIdentityName
output FUNCTION_IDENTITY_PRINCIPAL_ID string = identity.outputs.functionIdentityPrincipalId
output AGENT_IDENTITY_NAME string = identity.outputs.agentIdentityName
output AGENT_IDENTITY_CLIENT_ID string = identity.outputs.agentIdentityClientId
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output SERVICEBUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_OPENAI_ENDPOINT string = openAi.outputs.endpoint
output AZURE_OPENAI_ACCOUNT string = openAi.outputs.name
output AZURE_OPENAI_DEPLOYMENT string = openAi.outputs.deploymentName
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
output K8S_NAMESPACE string = k8sNamespace
